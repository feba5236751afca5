"""cluster.batch.torque: parsers on Torque (text and XML), PBS Pro and wrapper output, the
state table, headers, quoting, and live tests through Debian's Torque wrappers on Slurm."""
from __future__ import annotations

import getpass
import logging
import os
import re
import shlex
import shutil

import pytest
from batch_helpers import (FakeShell, check_golden, data, submit_options, wait_file,
                           wait_for, write_job)
from conftest import require, slurm_ready

from cluster.batch import State
from cluster.batch import torque as torque_mod
from cluster.options import check_arguments
from cluster.batch.torque import Torque, job_info, map_state, parse_qstat_f, parse_qstat_xml
from cluster.run.errors import CommandError, SubmissionError
from cluster.queue import Watcher
from cluster.script import JobFiles

EVERY_LETTER = {'Q': State.PENDING, 'W': State.PENDING, 'T': State.PENDING, 'M': State.PENDING,
                'R': State.RUNNING, 'E': State.RUNNING, 'B': State.RUNNING, 'H': State.HELD,
                'S': State.HELD, 'U': State.HELD, 'C': State.COMPLETED, 'F': State.COMPLETED,
                'X': State.COMPLETED}


def by_id(records, flavour='torque'):
    return {attrs['Job Id']: job_info(attrs, flavour) for attrs in records}


# --- state table ---------------------------------------------------------------------------
def test_every_job_state_letter_is_mapped():
    assert set(torque_mod.STATES) == set(EVERY_LETTER)
    for letter, state in EVERY_LETTER.items():
        assert map_state(letter) is state


def test_unknown_letter_is_unknown_and_logged(caplog):
    with caplog.at_level(logging.DEBUG, logger='cluster.batch._torque_parse'):
        assert map_state('Z') is State.UNKNOWN
    assert "'Z'" in caplog.text


# --- recorded and documented formats -----------------------------------------------------
def test_torque_xml():
    jobs = by_id(parse_qstat_xml(data('torque_qstat_x.xml')))
    running = jobs['1201.head.example.org']
    assert running.state is State.RUNNING and running.node == 'n01,n02'
    assert running.user == 'alice' and running.name == 'align_1'
    assert running.start == 1700000030 and running.end is None
    done = jobs['1202.head.example.org']
    assert (done.state, done.exitcode, done.end) == (State.COMPLETED, 0, 1700000038)
    walltime = jobs['1203.head.example.org']
    assert walltime.state is State.TIMEOUT and 'OVERLIMIT_WT' in walltime.reason
    killed = jobs['1204.head.example.org']
    assert (killed.state, killed.exitcode) == (State.FAILED, 143)
    assert killed.reason == 'killed by signal 15'
    assert jobs['1205.head.example.org'].state is State.HELD
    assert jobs['1206.head.example.org'].user == 'bob'
    assert (jobs['1207.head.example.org'].state, jobs['1207.head.example.org'].exitcode) == \
        (State.FAILED, 3)


def test_empty_xml_is_no_jobs():
    assert parse_qstat_xml('') == []
    assert parse_qstat_xml('<?xml version="1.0"?>\n<Data></Data>') == []


def test_torque_text_with_wrapped_values():
    records = parse_qstat_f(data('torque_qstat_f.txt'))
    assert [r['Job Id'] for r in records] == ['1301.head.example.org', '1302.head.example.org',
                                              '1303.head.example.org']
    assert records[0]['Variable_List'].endswith('PBS_O_SERVER=head.example.org')
    assert 'PBS_O_WORKDIR=/home/alice/run' in records[0]['Variable_List']
    jobs = by_id(records)
    done = jobs['1301.head.example.org']
    assert (done.state, done.exitcode, done.node) == (State.COMPLETED, 0, 'n07')
    assert done.start is not None and done.end - done.start == 4
    assert jobs['1302.head.example.org'].state is State.RUNNING
    assert jobs['1302.head.example.org'].node == 'n07,n08'
    memory = jobs['1303.head.example.org']
    assert memory.state is State.FAILED and 'OVERLIMIT_MEM' in memory.reason


def test_pbspro_text_with_history():
    jobs = by_id(parse_qstat_f(data('pbspro_qstat_fx.txt')), 'pbspro')
    done = jobs['4101.pbsserver']
    assert (done.state, done.exitcode, done.node) == (State.COMPLETED, 0, 'cn012')
    assert done.end - done.start == 15 * 60 + 2
    walltime = jobs['4102.pbsserver']
    assert walltime.state is State.TIMEOUT and 'KILL_WALLTIME' in walltime.reason
    killed = jobs['4103.pbsserver']
    assert (killed.state, killed.exitcode, killed.reason) == \
        (State.FAILED, 137, 'killed by signal 9')
    queued = jobs['4104.pbsserver']
    assert queued.state is State.PENDING and queued.reason.startswith('Not Running')
    assert jobs['4105.pbsserver'].state is State.HELD
    assert jobs['4106.pbsserver'].state is State.RUNNING  # E: exiting, not final yet


def test_wrapper_text_recorded_from_slurm_wlm_torque():
    jobs = by_id(parse_qstat_f(data('torque_wrapper_qstat_f.txt')), 'wrapper')
    assert jobs['67'].state is State.COMPLETED and jobs['67'].exitcode is None
    assert jobs['67'].node == 'vm' and jobs['67'].user == 'root'
    assert jobs['68'].state is State.RUNNING and jobs['68'].name == 'wrapper_run'
    assert jobs['69'].state is State.PENDING


def test_negative_codes_differ_between_torque_and_pbspro():
    attrs = {'Job Id': '1', 'job_state': 'C', 'exit_status': '-11'}
    assert job_info(attrs, 'torque').state is State.TIMEOUT
    attrs = {'Job Id': '1', 'job_state': 'F', 'Exit_status': '-11'}
    assert job_info(attrs, 'pbspro').state is State.FAILED  # JOB_EXEC_RERUN there


# --- commands through a fake runner -------------------------------------------------------
def fast(runner, flavour=None) -> Torque:
    system = Torque(runner)
    system.backoff = 0
    system._flavour = flavour
    return system


@pytest.mark.parametrize('version, flavour, argv', [
    ((0, 'Version: 6.1.3\n', ''), 'torque', ['qstat', '-x']),
    ((0, 'pbs_version = 2022.1.1\n', ''), 'pbspro', ['qstat', '-f', '-x']),
    ((2, '', 'Unknown option: version\n'), 'wrapper', ['qstat', '-f']),
])
def test_flavour_is_asked_once_and_picks_the_status_command(version, flavour, argv):
    runner = FakeShell({'qstat': lambda a: version if '--version' in a else (0, '', '')})
    system = fast(runner)
    system.statuses(['1'])
    system.statuses(['2'])
    assert system.flavour == flavour
    assert runner.calls == [['qstat', '--version'], argv + ['1'], argv + ['2']]


def test_statuses_is_one_call_keyed_by_the_ids_asked():
    runner = FakeShell({'qstat': (0, data('torque_qstat_x.xml'), '')})
    jobs = fast(runner, 'torque').statuses(['1201.head', '1202', '9999.head'])
    assert len(runner.calls) == 1
    assert set(jobs) == {'1201.head', '1202'} and jobs['1201.head'].id == '1201.head'


def test_unknown_id_exit_153_is_not_an_error():
    runner = FakeShell({'qstat': (153, '', '')})
    assert fast(runner, 'wrapper').statuses(['99999']) == {}
    runner = FakeShell({'qstat': (153, data('torque_qstat_x.xml'),
                                   'qstat: Unknown Job Id Error 9999.head.example.org\n')})
    assert set(fast(runner, 'torque').statuses(['1202', '9999'])) == {'1202'}
    assert len(runner.calls) == 1


def test_failing_qstat_is_retried_and_finally_raised():
    down = (1, '', 'Communication failure.\nqstat: cannot connect to server head (errno=111)')
    runner = FakeShell({'qstat': [down, (0, data('torque_wrapper_qstat_f.txt'), '')]})
    assert set(fast(runner, 'wrapper').statuses(['67'])) == {'67'}
    runner = FakeShell({'qstat': down})
    system = fast(runner, 'wrapper')
    with pytest.raises(CommandError, match='cannot connect to server'):
        system.statuses(['67'])
    assert len(runner.calls) == system.status_tries


def test_user_listing_filters_on_the_owner():
    runner = FakeShell({'qstat': (0, data('torque_qstat_x.xml'), '')})
    jobs = fast(runner, 'torque').statuses(None, user='bob')
    assert list(jobs) == ['1206.head.example.org'] and runner.calls == [['qstat', '-x']]


def files_in(tmp_path, name='job') -> JobFiles:
    files = JobFiles(str(tmp_path), name, qtype='torque')
    with open(files.submission, 'w') as handle:
        handle.write('#!/bin/bash\n')
    return files


def test_submit_argv_has_depend_and_output_paths(tmp_path):
    files = files_in(tmp_path)
    runner = FakeShell({'qsub': (0, '1301.head.example.org\n', '')})
    job_id = fast(runner, 'torque').submit(files, ['1201.head', '1202.head'], {})
    assert job_id == '1301.head.example.org'
    name = runner.calls[0][2]
    assert re.fullmatch(r'job\.c[0-9a-f]{10}', name)  # unique: the lookup key
    assert runner.calls == [['qsub', '-N', name, '-r', 'n',  # not rerun after a preemption
                             '-W', 'depend=afterok:1201.head:1202.head',
                             '-o', files.outfile, '-e', files.errfile, files.submission]]


WRAPPER_TIMEOUT = (1, "There was an error running the Slurm sbatch command.\nThe command was:"
                      "\n'/usr/bin/sbatch ...'\nand the output was:\n'sbatch: error: Batch job "
                      "submission failed: Socket timed out on send/recv operation\n'\n", '')


@pytest.mark.parametrize('flavour', ['wrapper', 'torque', 'pbspro'])
def test_qsub_of_unknown_outcome_is_looked_up_by_its_name(tmp_path, flavour):
    files = files_in(tmp_path)

    def qstat(argv):
        name = runner.calls[0][2]
        if flavour == 'torque':
            return (0, f'<Data><Job><Job_Id>41.head</Job_Id><Job_Name>{name}</Job_Name>'
                       f'<job_state>R</job_state></Job></Data>', '')
        return (0, f'Job Id: 41.head\n    Job_Name = {name}\n    job_state = R\n', '')
    runner = FakeShell({'qsub': WRAPPER_TIMEOUT, 'qstat': qstat})
    assert fast(runner, flavour).submit(files, [], {}) == '41.head'
    assert runner.programs() == ['qsub', 'qstat']  # never qsub twice


def test_wrapper_qsub_found_only_in_accounting(tmp_path):
    files = files_in(tmp_path)
    runner = FakeShell({'qsub': (255, '', 'connection lost'), 'qstat': (0, '', ''),
                         'sacct': (0, '42\n', '')})
    assert fast(runner, 'wrapper').submit(files, [], {}) == '42'
    assert runner.programs() == ['qsub', 'qstat', 'sacct']


def test_rejected_qsub_carries_its_message(tmp_path):
    files = files_in(tmp_path)
    message = 'qsub: submit error (Unknown queue MSG=cannot locate queue)\n'
    runner = FakeShell({'qsub': (1, '', message)})
    with pytest.raises(SubmissionError, match='Unknown queue'):
        fast(runner, 'torque').submit(files, [], {'partition': 'nosuch'})
    assert os.path.exists(files.submission)


def test_finished_job_without_exit_status_is_decided_by_its_code_file(tmp_path):
    files = files_in(tmp_path)
    done = 'Job Id:\t5\n\tJob_Name = job\n\tjob_state = C\n'
    runner = FakeShell({'qstat': (0, done, ''), 'sacct': (0, '', '')})
    system = fast(runner, 'wrapper')
    info = system.statuses(['5'])['5']
    assert info.state is State.UNKNOWN and not info.state.final  # qstat cannot tell
    watcher = Watcher(system, 'me', interval=0)
    watcher.track('5', files)
    watcher.refresh(force=True)
    assert watcher.open_ids() == ['5']  # no code file yet, no accounting: still open
    with open(files.exitcode, 'w') as handle:
        handle.write('7\n')
    info = watcher.wait(['5'], timeout=10)['5']
    assert (info.state, info.exitcode) == (State.FAILED, 7)


def test_cancelled_job_reports_cancelled(tmp_path):
    done = 'Job Id:\t5\n\tjob_state = C\n'
    runner = FakeShell({'qdel': (0, '', ''), 'qstat': (0, done, '')})
    system = fast(runner, 'wrapper')
    system.cancel(['5'])
    assert runner.calls[0] == ['qdel', '5']
    assert system.statuses(['5'])['5'].state is State.CANCELLED


def test_qdel_of_a_finished_job_is_fine_but_of_a_live_one_is_an_error():
    finished = 'Job Id:\t5\n\tjob_state = C\n'
    runner = FakeShell({'qdel': (1, '', ''), 'qstat': (0, finished, '')})
    fast(runner, 'wrapper').cancel(['5'])
    running = 'Job Id:\t6\n\tjob_state = R\n'
    runner = FakeShell({'qdel': (1, '', 'qdel: Unauthorized Request'),
                         'qstat': (0, running, '')})
    with pytest.raises(CommandError, match='still queued or running'):
        fast(runner, 'wrapper').cancel(['6'])


# --- scripts -------------------------------------------------------------------------------
GOLDEN_OPTIONS = {'name': 'align', 'nodes': 2, 'cores': 4, 'mem': '4GB', 'time': '1-02:00:00',
                  'partition': 'batch', 'account': 'lab', 'features': ['avx2'],
                  'outfile': '/data/run/align.cluster.out',
                  'errfile': '/data/run/align.cluster.err'}


def test_golden_torque_script():
    files = JobFiles('/data/run', 'align', qtype='torque')
    system = Torque(FakeShell({}))
    header = system.render_header(check_arguments(GOLDEN_OPTIONS), files)  # as a Job does
    texts = system.render_scripts(files, header,
                                  'echo "aligning"\nexit 0')
    assert list(texts) == ['/data/run/align.cluster.qsub']
    check_golden('torque_align.qsub', texts[files.submission])


def test_output_paths_with_spaces_go_on_the_command_line(tmp_path):
    files = files_in(tmp_path)
    system = fast(FakeShell({'qsub': (0, '5\n', '')}), 'torque')
    options = {'name': 'ok', 'outfile': '/tmp/my dir/o.out', 'errfile': "/tmp/it's/e.err"}
    assert system.render_header(options, files) == ['#PBS -N ok']
    system.submit(files, [], options)
    argv = system.shell.calls[-1]
    assert argv[argv.index('-o') + 1] == '/tmp/my dir/o.out'
    assert argv[argv.index('-e') + 1] == "/tmp/it's/e.err"


# --- live, through the wrappers ------------------------------------------------------------
@pytest.fixture
def torque(tmp_path, monkeypatch):
    """Slurm's Torque wrappers (fail in CI when they or Slurm are missing)."""
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    require('the Torque wrappers', bool(shutil.which('qsub')),
            'bash tests/cluster/slurm_up.sh (package slurm-wlm-torque)')
    monkeypatch.chdir(tmp_path)
    return Torque()


def wait_done(system, job_id, timeout=60, files=None):
    """The job's outcome, decided where the package decides it: by a Watcher (qstat, the
    job's exit-code file, and Slurm's accounting under the wrappers)."""
    watcher = Watcher(system, getpass.getuser(), interval=0.2)
    watcher.track(job_id, files)
    return watcher.wait([job_id], timeout)[job_id]


@pytest.mark.torque
def test_live_submit_status_and_exit_code(torque, tmp_path):
    files = write_job(torque, str(tmp_path), 'hello', 'echo hi; echo oops >&2; exit 3',
                      cores=1, time='00:05:00')
    job_id = torque.submit(files, [], submit_options(files))
    assert torque.flavour == 'wrapper'
    assert torque.statuses([job_id])[job_id].name == 'hello'
    assert job_id in torque.statuses(None, user=getpass.getuser())
    info = wait_done(torque, job_id, files=files)
    assert (info.state, info.exitcode) == (State.FAILED, 3)
    assert open(files.outfile).read() == 'hi\n'  # -o/-e on the command line were obeyed
    assert open(files.errfile).read() == 'oops\n'


@pytest.mark.torque
def test_live_success_and_dependency_order(torque, tmp_path):
    log = tmp_path / 'order.txt'
    first = write_job(torque, str(tmp_path), 'first', f'sleep 1; echo first >> {log}')
    second = write_job(torque, str(tmp_path), 'second', f'echo second >> {log}')
    first_id = torque.submit(first, [], submit_options(first))
    second_id = torque.submit(second, [first_id], submit_options(second))
    info = wait_done(torque, second_id, files=second)
    assert (info.state, info.exitcode) == (State.COMPLETED, 0)
    assert log.read_text() == 'first\nsecond\n'


@pytest.mark.torque
def test_live_qdel_reports_cancelled(torque, tmp_path):
    files = write_job(torque, str(tmp_path), 'long', 'sleep 300')
    job_id = torque.submit(files, [], submit_options(files))
    wait_for(torque, job_id, lambda i: i.state is State.RUNNING, accounting=False)
    torque.cancel([job_id])
    assert wait_done(torque, job_id).state is State.CANCELLED


@pytest.mark.torque
def test_live_rejected_submission_keeps_the_script(torque, tmp_path):
    files = write_job(torque, str(tmp_path), 'refused', 'true', partition='nosuchqueue')
    with pytest.raises(SubmissionError, match='Invalid partition name specified'):
        torque.submit(files, [], submit_options(files))
    assert os.path.getsize(files.submission) > 0


@pytest.mark.torque
def test_live_nothing_executes_by_accident(torque, tmp_path):
    evil = 'a b \'q\' "dq" $(touch PWNED) `touch PWNED2` ; touch PWNED3\nline 2'
    out = tmp_path / 'printed.txt'
    files = write_job(torque, str(tmp_path), 'quoted',
                      f'printf "%s" {shlex.quote(evil)} > {shlex.quote(str(out))}')
    job_id = torque.submit(files, [], submit_options(files))
    assert wait_done(torque, job_id, files=files).state is State.COMPLETED
    assert out.read_text() == evil
    assert wait_file(files.exitcode).strip() == '0'
    assert not any(p.name.startswith('PWNED') for p in tmp_path.iterdir())


@pytest.mark.torque
def test_live_wrapper_refuses_paths_its_shell_would_run(torque, tmp_path):
    """Slurm's qsub wrapper builds a shell command from its arguments without quoting."""
    directory = tmp_path / "dir with 'quote' and $(touch PWNED)"
    directory.mkdir()
    files = write_job(torque, str(directory), 'quoted', 'true')
    with pytest.raises(SubmissionError, match='without quoting'):
        torque.submit(files, [], submit_options(files))
    assert os.path.getsize(files.submission) > 0
    for place in (tmp_path, directory):
        assert not any(p.name.startswith('PWNED') for p in place.iterdir())


def test_truncated_xml_is_a_command_error_not_a_crash():
    runner = FakeShell({'qstat': (0, '<Data><Job><Job_Id>1.head</Job_Id><job_st', '')})
    with pytest.raises(CommandError, match='unreadable qstat XML'):
        fast(runner, 'torque').statuses(['1'])


def test_wrapper_outcomes_come_from_slurm_accounting_in_one_call():
    done = ''.join(f'Job Id:\t{i}\n\tjob_state = C\n' for i in (1, 2, 3))
    sacct = ('1|COMPLETED|0:0||me|n1|||\n2|FAILED|5:0||me|n1|||\n'
             '3|CANCELLED by 0|0:15||me|n1|||\n')
    runner = FakeShell({'qstat': (0, done, ''), 'sacct': (0, sacct, '')})
    watcher = Watcher(fast(runner, 'wrapper'), 'me', interval=0)
    jobs = watcher.wait(['1', '2', '3'], timeout=10)
    assert (jobs['1'].state, jobs['1'].exitcode) == (State.COMPLETED, 0)
    assert (jobs['2'].state, jobs['2'].exitcode) == (State.FAILED, 5)
    assert (jobs['3'].state, jobs['3'].exitcode) == (State.CANCELLED, 143)
    assert runner.programs().count('sacct') == 1
