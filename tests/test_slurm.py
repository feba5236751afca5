"""cluster.batch.slurm: parsers on recorded output, the state table, headers, quoting,
and live tests against the real single-node Slurm of tests/cluster/slurm_up.sh."""
from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import threading
import time

import pytest
from batch_helpers import (FakeShell, check_golden, data, short_hostname, submit_options,
                           wait_accounting, wait_file, wait_final, wait_for, write_job)
from conftest import require, slurm_ready
from support import end_time_now

from cluster.batch import State
from cluster.batch import slurm as slurm_mod
from cluster.batch._dependencies import NOT_SUBMITTED
from cluster.batch.slurm import Slurm, map_state, parse_exitcode, parse_sacct, parse_squeue
from cluster.batch import _submit as submit_mod
from cluster.run.errors import CommandError, OptionError, SubmissionError, SubmissionUnknown
from cluster.options import check_arguments
from cluster.script import JobFiles

EVERY_STATE = {
    'PENDING': State.PENDING, 'CONFIGURING': State.PENDING, 'RUNNING': State.RUNNING,
    'COMPLETING': State.RUNNING, 'COMPLETED': State.COMPLETED, 'FAILED': State.FAILED,
    'CANCELLED': State.CANCELLED, 'TIMEOUT': State.TIMEOUT, 'NODE_FAIL': State.FAILED,
    'OUT_OF_MEMORY': State.FAILED, 'PREEMPTED': State.CANCELLED, 'BOOT_FAIL': State.FAILED,
    'DEADLINE': State.TIMEOUT, 'SUSPENDED': State.HELD, 'REQUEUED': State.PENDING,
    'RESIZING': State.RUNNING, 'REVOKED': State.CANCELLED, 'SPECIAL_EXIT': State.FAILED,
    'STOPPED': State.HELD, 'SIGNALING': State.RUNNING, 'STAGE_OUT': State.RUNNING,
    'REQUEUE_HOLD': State.HELD, 'REQUEUE_FED': State.PENDING, 'RESV_DEL_HOLD': State.HELD,
}


# --- state table and small parsers --------------------------------------------------------
def test_every_native_state_is_mapped():
    for native, state in EVERY_STATE.items():
        assert map_state(native) is state, native
    assert set(slurm_mod.STATES) == set(EVERY_STATE)
    for code, native in slurm_mod.SHORT_CODES.items():
        assert map_state(code) is EVERY_STATE[native], code


def test_sacct_spellings_are_mapped():
    assert map_state('CANCELLED by 0') is State.CANCELLED
    assert map_state('CANCELLED by 1234') is State.CANCELLED
    assert map_state('completed') is State.COMPLETED


def test_unknown_state_is_unknown_and_logged(caplog):
    with caplog.at_level(logging.DEBUG, logger='cluster.batch.slurm'):
        assert map_state('WIBBLE') is State.UNKNOWN
    assert 'WIBBLE' in caplog.text


@pytest.mark.parametrize('text, code', [('0:0', 0), ('3:0', 3), ('0:9', 137), ('0:15', 143),
                                        ('', None), ('x:y', None)])
def test_exit_code_with_signal(text, code):
    assert parse_exitcode(text) == code


# --- recorded squeue / sacct --------------------------------------------------------------
def test_parse_recorded_squeue_pending_running_held():
    jobs = parse_squeue(data('slurm_squeue_1.txt'))
    assert jobs['48'].state is State.COMPLETED and jobs['48'].node == 'vm'
    assert jobs['49'].state is State.FAILED and jobs['49'].reason == 'NonZeroExitCode'
    assert jobs['52'].state is State.HELD and jobs['52'].reason == 'JobHeldUser'
    assert jobs['53'].state is State.PENDING and jobs['53'].reason == 'Dependency'
    assert jobs['53'].start is None and jobs['53'].node is None
    assert jobs['50'].state is State.RUNNING and jobs['50'].start is not None
    assert jobs['50'].end is None  # squeue's end of a running job is only the limit
    assert jobs['51'].name == 'odd|name x'  # the name is last: a '|' in it is harmless
    assert jobs['55'].state is State.CANCELLED and jobs['55'].user == 'root'
    assert jobs['48'].end is not None and jobs['48'].start <= jobs['48'].end


def test_parse_recorded_squeue_dependency_and_timeout():
    jobs = parse_squeue(data('slurm_squeue_2.txt'))
    assert jobs['53'].state is State.CANCELLED
    assert jobs['53'].reason == 'DependencyNeverSatisfied'
    assert jobs['57'].state is State.FAILED and jobs['57'].reason == 'JobLaunchFailure'
    jobs = parse_squeue(data('slurm_squeue_3.txt'))
    assert jobs['56'].state is State.TIMEOUT and jobs['56'].reason == 'TimeLimit'


def test_pending_forever_is_reported_as_cancelled():
    """Without kill_invalid_depend a job waits with DependencyNeverSatisfied for ever."""
    line = '77|PENDING|DependencyNeverSatisfied|ann||N/A|N/A|child\n'
    info = parse_squeue(line)['77']
    assert info.state is State.CANCELLED and info.state.final
    assert info.reason == 'DependencyNeverSatisfied'


def test_parse_recorded_sacct():
    jobs = parse_sacct(data('slurm_sacct.txt'))
    assert (jobs['48'].state, jobs['48'].exitcode) == (State.COMPLETED, 0)
    assert (jobs['49'].state, jobs['49'].exitcode) == (State.FAILED, 3)
    assert jobs['50'].state is State.CANCELLED and jobs['50'].reason == 'cancelled by 0'
    assert jobs['52'].state is State.HELD and jobs['52'].exitcode is None
    assert jobs['52'].node is None and jobs['52'].start is None
    assert jobs['53'].state is State.CANCELLED and jobs['53'].reason == 'Dependency'
    assert jobs['56'].state is State.TIMEOUT
    assert (jobs['57'].state, jobs['57'].exitcode) == (State.FAILED, 137)
    assert jobs['57'].start is not None and jobs['57'].end >= jobs['57'].start


def test_sacct_steps_are_ignored():
    text = '5|FAILED|2:0|None|ann|n1|2026-01-01T00:00:00|2026-01-01T00:00:01\n' \
           '5.batch|FAILED|2:0||||2026-01-01T00:00:00|2026-01-01T00:00:01\n'
    assert list(parse_sacct(text)) == ['5']


# --- commands, through a fake runner ------------------------------------------------------
def fast(runner) -> Slurm:
    system = Slurm(runner)
    system.backoff = 0
    return system


def test_statuses_is_one_squeue_call_for_all_ids():
    runner = FakeShell({'squeue': (0, data('slurm_squeue_1.txt'), '')})
    jobs = fast(runner).statuses(['48', '49', '50', '999'])
    assert runner.programs() == ['squeue']
    argv = runner.calls[0]
    assert argv[:4] == ['squeue', '-h', '-t', 'all']
    assert argv[argv.index('-j') + 1] == '48,49,50,999'
    assert set(jobs) == {'48', '49', '50'}  # 999 unknown: left out, other jobs filtered


def test_statuses_of_a_user():
    runner = FakeShell({'squeue': (0, data('slurm_squeue_1.txt'), '')})
    jobs = fast(runner).statuses(None, user='root')
    assert runner.calls[0][-2:] == ['-u', 'root'] and '-j' not in runner.calls[0]
    assert len(jobs) == 10


def test_single_unknown_id_is_not_an_error():
    runner = FakeShell({'squeue': (1, '', 'slurm_load_jobs error: Invalid job id specified\n')})
    assert fast(runner).statuses(['12345']) == {}
    assert len(runner.calls) == 1


def test_failing_squeue_is_retried_then_answers():
    down = (1, '', 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)')
    runner = FakeShell({'squeue': [down, down, (0, data('slurm_squeue_3.txt'), '')]})
    jobs = fast(runner).statuses(['56'])
    assert jobs['56'].state is State.TIMEOUT
    assert runner.programs() == ['squeue'] * 3


def test_squeue_failing_every_time_raises_with_its_message():
    runner = FakeShell({'squeue': (1, '', 'Unable to contact slurm controller')})
    system = fast(runner)
    with pytest.raises(CommandError, match='Unable to contact slurm controller'):
        system.statuses(['1'])
    assert len(runner.calls) == system.status_tries


def test_final_info_is_one_sacct_call():
    runner = FakeShell({'sacct': (0, data('slurm_sacct.txt'), '')})
    jobs = fast(runner).final_info(['48', '49'])
    assert set(jobs) == {'48', '49'} and jobs['49'].exitcode == 3
    argv = runner.calls[0]
    assert argv[:3] == ['sacct', '-j', '48,49'] and '--parsable2' in argv and '-X' in argv


def test_final_info_without_accounting_is_empty_and_not_asked_again():
    runner = FakeShell({'sacct': (1, '', 'sacct: error: Slurm accounting storage is disabled')})
    system = fast(runner)
    assert system.final_info(['1']) == {}
    assert system.final_info(['2']) == {}
    assert len(runner.calls) == 2  # two tries the first time, none after


def test_slots_are_the_usable_cpus_of_the_default_partition_read_once():
    listing = 'debug 8/0/4/16\nbatch* 3/1/2/10\n'  # batch: 10 CPUs, 2 down or drained
    runner = FakeShell({'sinfo': (0, listing, '')})
    system = fast(runner)
    assert system.slots() == 8 and system.slots() == 8
    assert runner.calls == [['sinfo', '-h', '-o', '%P %C']]


def test_slots_unknown_when_sinfo_fails():
    runner = FakeShell({'sinfo': (1, '', 'sinfo: error: Unable to contact slurm controller')})
    assert fast(runner).slots() is None


def files_in(tmp_path, name='job') -> JobFiles:
    files = JobFiles(str(tmp_path), name, qtype='slurm')
    for path in (files.submission, files.exec_script):
        with open(path, 'w') as handle:
            handle.write('#!/bin/bash\n')
    return files


def test_submit_argv_and_cluster_suffix(tmp_path):
    files = files_in(tmp_path)
    runner = FakeShell({'sbatch': (0, '4242;cluster\n', ''),
                         'squeue': (0, '1|RUNNING|None|u|n|N/A|N/A|a\n2|PENDING|Priority|u||'
                                       'N/A|N/A|b\n', '')})
    job_id = fast(runner).submit(files, ['1', '2'], submit_options(files))
    assert job_id == '4242'
    sbatch = runner.calls[-1]
    name = sbatch[2].split('=', 1)[1]
    assert re.fullmatch(r'job\.c[0-9a-f]{10}', name)  # unique: the lookup key
    assert sbatch == ['sbatch', '--parsable', f'--job-name={name}', f'--output={files.outfile}',
                      f'--error={files.errfile}', '--dependency=afterok:1:2', files.submission]
    assert runner.programs() == ['squeue', 'sbatch']  # dependencies checked in one call
    fast(runner).submit(files)
    assert runner.calls[-1][2] != sbatch[2]  # every submission has a name of its own


def test_rejected_submission_carries_sbatchs_message(tmp_path):
    files = files_in(tmp_path)
    message = ('sbatch: error: invalid partition specified: nosuch\n'
               'sbatch: error: Batch job submission failed: Invalid partition name specified\n')
    runner = FakeShell({'sbatch': (1, '', message)})
    with pytest.raises(SubmissionError, match='Invalid partition name specified') as caught:
        fast(runner).submit(files)
    assert caught.value.code == 1 and 'nosuch' in caught.value.stderr
    assert len(runner.calls) == 1  # a refusal is not retried
    assert os.path.exists(files.submission) and os.path.exists(files.exec_script)


def test_dependency_on_a_forgotten_failed_job_cancels_the_dependent(tmp_path):
    """Slurm takes a dependency on a job it forgot as satisfied: check sacct first, and
    then submit nothing (no held job that a killed driver would leave behind)."""
    files = files_in(tmp_path)
    sacct = '7|FAILED|2:0|None|u|n|2026-01-01T00:00:00|2026-01-01T00:00:01\n'
    runner = FakeShell({'squeue': (0, '', ''), 'sacct': (0, sacct, ''),
                         'sbatch': (0, '8\n', ''), 'scancel': (0, '', '')})
    system = fast(runner)
    job_id = system.submit(files, ['7'])
    assert runner.programs() == ['squeue', 'sacct']
    assert job_id.startswith(NOT_SUBMITTED)
    for info in (system.statuses([job_id])[job_id], system.final_info([job_id])[job_id]):
        assert info.state is State.CANCELLED
        assert info.reason == 'dependency 7 ended failed with exit code 2'
    system.cancel([job_id])
    grandchild = system.submit(files, [job_id])  # its dependents are not submitted either
    assert system.statuses([grandchild])[grandchild].reason == \
        f'dependency {job_id} ended cancelled'
    assert runner.programs() == ['squeue', 'sacct']  # no squeue/scancel for them


# --- scripts: golden files and quoting ----------------------------------------------------
GOLDEN_OPTIONS = {'name': 'align', 'cores': 4, 'mem': '4GB', 'time': '1-02:00:00',
                  'partition': 'debug', 'account': 'lab', 'features': ['avx2'],
                  'outfile': '/data/run/align.cluster.out',
                  'errfile': '/data/run/align.cluster.err'}


def test_golden_slurm_scripts():
    files = JobFiles('/data/run', 'align', qtype='slurm')
    system = Slurm(FakeShell({}))
    header = system.render_header(check_arguments(GOLDEN_OPTIONS), files)  # as a Job does
    texts = system.render_scripts(files, header, 'echo "aligning"\nexit 0')
    assert list(texts) == ['/data/run/align.cluster.sbatch', '/data/run/align.cluster.script']
    check_golden('slurm_align.sbatch', texts[files.submission])
    check_golden('slurm_align.script', texts[files.exec_script])


EVIL = 'a b \'q\' "dq" $(touch PWNED) `touch PWNED2` ; touch PWNED3\nline 2 \\ end'


def test_exec_script_path_is_quoted(tmp_path):
    directory = str(tmp_path / "d i r 'q' $(touch PWNED)\nx")
    files = JobFiles(directory, 'job', qtype='slurm')
    texts = Slurm(FakeShell({})).render_scripts(files, [], 'true')
    last = texts[files.submission].rstrip('\n')
    run_line = last[last.index('bash '):]
    assert shlex.split(run_line) == ['bash', files.exec_script]


def test_output_paths_with_spaces_leave_the_header_for_the_command_line(tmp_path):
    files = files_in(tmp_path)
    system = fast(FakeShell({'sbatch': (0, '5\n', '')}))
    options = {'name': 'ok', 'outfile': '/tmp/my dir/o.out', 'errfile': "/tmp/it's/e.err"}
    header = system.render_header(options, files)
    assert header == ['#SBATCH --job-name=ok']
    system.submit(files, [], options)
    argv = system.shell.calls[-1]
    assert '--output=/tmp/my dir/o.out' in argv and "--error=/tmp/it's/e.err" in argv


def test_unsafe_job_name_is_refused_with_a_clear_error(tmp_path):
    files = files_in(tmp_path)
    with pytest.raises(OptionError, match='name'):
        Slurm(FakeShell({})).render_header({'name': 'my job $(rm -rf x)'}, files)


# --- live, against the real Slurm ---------------------------------------------------------
@pytest.fixture
def slurm(tmp_path, monkeypatch):
    """The real Slurm (fails in CI when it is not up); the test runs in its tmp dir."""
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    monkeypatch.chdir(tmp_path)
    return Slurm()


@pytest.mark.slurm
def test_live_submit_status_and_accounting(slurm, tmp_path):
    files = write_job(slurm, str(tmp_path), 'hello', 'echo hi; echo oops >&2; exit 3')
    job_id = slurm.submit(files, [], submit_options(files))
    assert job_id.isdigit()
    seen = slurm.statuses([job_id])
    assert job_id in seen and seen[job_id].name == 'hello'
    info = wait_final(slurm, job_id)
    assert info.state is State.FAILED
    final = wait_accounting(slurm, job_id)
    assert (final.state, final.exitcode) == (State.FAILED, 3)
    assert final.node == short_hostname()
    assert wait_file(files.exitcode).strip() == '3'
    assert open(files.outfile).read() == 'hi\n'
    assert open(files.errfile).read() == 'oops\n'


@pytest.mark.slurm
def test_live_success_reports_completed_with_code_zero(slurm, tmp_path):
    files = write_job(slurm, str(tmp_path), 'fine', 'echo fine', cores=1, time='00:05:00')
    job_id = slurm.submit(files, [], submit_options(files))
    assert wait_final(slurm, job_id).state is State.COMPLETED
    final = wait_accounting(slurm, job_id)
    assert (final.state, final.exitcode) == (State.COMPLETED, 0)


@pytest.mark.slurm
def test_live_dependent_of_a_failed_job_is_cancelled_not_pending(slurm, tmp_path):
    parent = write_job(slurm, str(tmp_path), 'parent', 'sleep 2; exit 1')
    child = write_job(slurm, str(tmp_path), 'child', 'echo ran > ran.txt')
    parent_id = slurm.submit(parent, [], submit_options(parent))
    child_id = slurm.submit(child, [parent_id], submit_options(child))
    info = wait_final(slurm, child_id, timeout=60)
    assert info.state is State.CANCELLED
    assert info.reason and 'Dependency' in info.reason
    assert wait_final(slurm, parent_id).state is State.FAILED
    assert not os.path.exists(tmp_path / 'ran.txt')


@pytest.mark.slurm
def test_live_dependent_of_an_already_failed_job_is_cancelled(slurm, tmp_path):
    parent = write_job(slurm, str(tmp_path), 'parent', 'exit 4')
    parent_id = slurm.submit(parent, [], submit_options(parent))
    assert wait_final(slurm, parent_id).state is State.FAILED
    child = write_job(slurm, str(tmp_path), 'child', 'echo ran > ran.txt')
    child_id = slurm.submit(child, [parent_id], submit_options(child))
    info = wait_final(slurm, child_id)
    assert info.state is State.CANCELLED
    assert not os.path.exists(tmp_path / 'ran.txt')


@pytest.mark.slurm
def test_live_dependency_afterok_runs_in_order(slurm, tmp_path):
    log = tmp_path / 'order.txt'
    first = write_job(slurm, str(tmp_path), 'first', f'sleep 1; echo first >> {log}')
    second = write_job(slurm, str(tmp_path), 'second', f'echo second >> {log}')
    first_id = slurm.submit(first, [], submit_options(first))
    second_id = slurm.submit(second, [first_id], submit_options(second))
    assert wait_final(slurm, second_id).state is State.COMPLETED
    assert log.read_text() == 'first\nsecond\n'


@pytest.mark.slurm
def test_live_scancel_reports_cancelled(slurm, tmp_path):
    files = write_job(slurm, str(tmp_path), 'long', 'sleep 300')
    job_id = slurm.submit(files, [], submit_options(files))
    wait_for(slurm, job_id, lambda i: i.state is State.RUNNING)
    slurm.cancel([job_id])
    assert wait_final(slurm, job_id).state is State.CANCELLED
    assert wait_accounting(slurm, job_id).state is State.CANCELLED
    slurm.cancel([job_id])  # cancelling a finished job is not an error


@pytest.mark.slurm
def test_live_time_limit_reports_timeout(slurm, tmp_path):
    """A job past its limit ends TIMEOUT. Slurm's limits are whole minutes, so the test
    moves the running job's end time to now (root only); slurmctld enforces limits on
    its own periodic check (every 30 s), which is the mechanism under test."""
    files = write_job(slurm, str(tmp_path), 'slow', 'sleep 300', time='00:01:00')
    job_id = slurm.submit(files, [], submit_options(files))
    wait_for(slurm, job_id, lambda i: i.state is State.RUNNING)
    end_time_now(job_id)
    info = wait_final(slurm, job_id, timeout=70)
    assert info.state is State.TIMEOUT
    assert info.reason == 'TimeLimit'


@pytest.mark.slurm
@pytest.mark.parametrize('options, message', [
    ({'partition': 'nosuchpartition'}, 'Invalid partition name specified'),
    ({'mem': '100TB'}, 'Requested node configuration is not available'),
])
def test_live_rejected_submission_keeps_the_scripts(slurm, tmp_path, options, message):
    files = write_job(slurm, str(tmp_path), 'refused', 'true', **options)
    with pytest.raises(SubmissionError, match=message) as caught:
        slurm.submit(files, [], submit_options(files))
    assert 'sbatch' in str(caught.value)
    assert os.path.getsize(files.submission) > 0 and os.path.getsize(files.exec_script) > 0


@pytest.mark.slurm
def test_live_nothing_executes_by_accident(slurm, tmp_path):
    directory = tmp_path / "dir with 'quote' and $(touch PWNED)"
    directory.mkdir()
    out = directory / 'printed.txt'
    command = f'printf "%s" {shlex.quote(EVIL)} > {shlex.quote(str(out))}'
    files = write_job(slurm, str(directory), 'quoted', command)
    job_id = slurm.submit(files, [], submit_options(files))
    assert wait_final(slurm, job_id).state is State.COMPLETED
    assert out.read_text() == EVIL
    for place in (tmp_path, directory):
        assert not any(p.name.startswith('PWNED') for p in place.iterdir())


@pytest.mark.alone
@pytest.mark.slurm
def test_live_slurmctld_restart_while_polling(slurm, tmp_path):
    """The controller goes away under a status call; the retries carry it through."""
    if os.geteuid() != 0:
        require('root (to restart slurmctld)', False, 'run the tests as root')
    files = write_job(slurm, str(tmp_path), 'through', 'sleep 3; echo done')
    job_id = slurm.submit(files, [], submit_options(files))
    calls = []

    def counting(argv, stdin=None, timeout=None):
        calls.append(argv[0])
        return slurm_mod.local_shell(argv, stdin=stdin, timeout=timeout)

    polling = Slurm(counting)
    polling.status_tries = 8
    pidfile = '/run/slurm/slurmctld.pid'
    old_pid = int(open(pidfile).read())
    subprocess.run(['scontrol', 'shutdown', 'slurmctld'], check=True, capture_output=True)
    result = {}

    def poll():
        result['jobs'] = polling.statuses([job_id])

    try:
        deadline = time.monotonic() + 30
        while os.path.exists(f'/proc/{old_pid}') and time.monotonic() < deadline:
            time.sleep(0.1)
        thread = threading.Thread(target=poll)
        thread.start()
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
        while thread.is_alive() and len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the first squeue has failed against the stopped controller
    finally:
        subprocess.run(['slurmctld'], check=True)
    thread.join(60)
    assert not thread.is_alive()
    assert len(calls) >= 2, calls
    assert job_id in result['jobs']
    assert wait_final(slurm, job_id).state is State.COMPLETED
    assert wait_file(files.outfile).strip() == 'done'


TIMED_OUT = (1, '', 'sbatch: error: Batch job submission failed: Socket timed out on '
                   'send/recv operation\n')


@pytest.fixture
def quick_lookup(monkeypatch):
    monkeypatch.setattr(submit_mod, 'CONFIRM_ABSENT', 0.0)


def sbatch_name(runner) -> str:
    return next(a for a in runner.calls[0] if a.startswith('--job-name=')).split('=', 1)[1]


@pytest.mark.parametrize('failure', [
    TIMED_OUT, (124, '', 'timed out after 60 s'),
    (255, '', 'the connection to host was lost while sbatch ran (it may have run)'),
    (1, '', 'sbatch: error: Batch job submission failed: Unable to contact slurm controller '
            '(connect failure)\n'),
    (0, '', '')])
def test_submit_of_unknown_outcome_is_looked_up_by_its_name(tmp_path, failure):
    files = files_in(tmp_path)

    def squeue(argv):
        name = argv[4].split('=', 1)[1]
        return (0, '31\n', '') if name == sbatch_name(runner) else (0, '', '')
    runner = FakeShell({'sbatch': failure, 'squeue': squeue})
    assert fast(runner).submit(files) == '31'
    assert runner.programs() == ['sbatch', 'squeue']  # never sbatch twice
    assert runner.calls[1][:4] == ['squeue', '-h', '-t', 'all']


def test_submit_found_only_in_accounting(tmp_path):
    files = files_in(tmp_path)
    runner = FakeShell({'sbatch': TIMED_OUT, 'squeue': (0, '', ''), 'sacct': (0, '32\n', '')})
    assert fast(runner).submit(files) == '32'
    assert runner.programs() == ['sbatch', 'squeue', 'sacct']
    assert f'--name={sbatch_name(runner)}' in runner.calls[2]


def test_submit_not_taken_is_submitted_again_with_the_same_name(tmp_path, quick_lookup):
    files = files_in(tmp_path)
    runner = FakeShell({'sbatch': [TIMED_OUT, (0, '33\n', '')], 'squeue': (0, '', ''),
                         'sacct': (0, '', '')})
    assert fast(runner).submit(files) == '33'
    assert runner.programs() == ['sbatch', 'squeue', 'sacct', 'squeue', 'sacct', 'sbatch']
    assert runner.calls[0] == runner.calls[-1]


def test_submit_lookup_without_an_answer_names_the_job(tmp_path):
    files = files_in(tmp_path)
    down = (1, '', 'slurm_load_jobs error: Unable to contact slurm controller\n')
    runner = FakeShell({'sbatch': TIMED_OUT, 'squeue': down})
    system = fast(runner)
    system.lookup_deadline = 0.3
    with pytest.raises(SubmissionUnknown) as caught:
        system.submit(files)
    name = sbatch_name(runner)
    assert caught.value.name == name and f'squeue --name={name}' in str(caught.value)
    assert not isinstance(caught.value, SubmissionError)
    assert runner.programs().count('sbatch') == 1 and 'squeue' in runner.programs()


def test_submit_lookup_without_accounting_cannot_decide(tmp_path):
    files = files_in(tmp_path)
    off = (1, '', 'sacct: error: Slurm accounting storage is disabled\n')
    runner = FakeShell({'sbatch': TIMED_OUT, 'squeue': (0, '', ''), 'sacct': off})
    with pytest.raises(SubmissionUnknown, match='accounting is disabled'):
        fast(runner).submit(files)
    assert runner.programs() == ['sbatch', 'squeue', 'sacct']
