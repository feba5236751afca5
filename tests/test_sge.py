"""cluster.batch.sge: parsers on the real Grid Engine's recorded output (tests/data/sge/), the
state table, headers and settings, detection, and live tests on the single-host Son of Grid
Engine 8.1.9 of tests/cluster/sge_up.sh (the Job API set itself runs on it through the
``target`` fixture of conftest.py)."""
from __future__ import annotations

import getpass
import time

import pytest
from batch_helpers import FakeShell, check_golden, data
from conftest import use_sge

import cluster
from cluster import batch, config_file
from cluster.batch import State, local_shell
from cluster.batch.sge import (DEPENDENCY_EXIT, GridEngine, accounting_info, map_state,
                               parse_qacct, parse_qstat_xml)
from cluster.options import check_arguments
from cluster.run.errors import ConfigError
from cluster.script import JobFiles

sge_live = pytest.mark.sge


def qacct(name: str):
    records = parse_qacct(data(f'sge/{name}'))
    assert records, name
    return accounting_info(records[-1])


# --- state table and parsers ---------------------------------------------------------------
@pytest.mark.parametrize('code, state', [
    ('qw', State.PENDING), ('hqw', State.HELD), ('r', State.RUNNING), ('t', State.RUNNING),
    ('Rr', State.RUNNING), ('Rq', State.PENDING), ('dr', State.CANCELLED), ('Eqw', State.FAILED),
    ('s', State.HELD), ('S', State.HELD), ('T', State.HELD), ('??', State.UNKNOWN)])
def test_every_state_code_is_mapped(code, state):
    assert map_state(code) is state


def test_a_dependency_hold_is_pending_not_held():
    assert map_state('hqw', held_is_pending=True) is State.PENDING


def test_qstat_xml_of_running_pending_and_held_jobs():
    jobs = {job['JB_job_number']: job for job in
            parse_qstat_xml(data('sge/qstat_xml_running_pending_held.xml'))}
    system = GridEngine(FakeShell({}))
    infos = {i: system._listed_info(job) for i, job in jobs.items()}
    assert {i: info.state for i, info in infos.items()} == {
        '20': State.RUNNING, '21': State.RUNNING, '22': State.PENDING, '23': State.HELD,
        '24': State.PENDING}
    assert infos['20'].node == 'vm' and infos['20'].user == 'root' and infos['20'].start


def test_qacct_failed_and_exit_status_decide_together():
    ok, three = qacct('qacct_ok.txt'), qacct('qacct_exit_3.txt')
    assert (ok.state, ok.exitcode) == (State.COMPLETED, 0)
    assert (three.state, three.exitcode) == (State.FAILED, 3)
    limit = qacct('qacct_h_rt.txt')
    assert (limit.state, limit.exitcode) == (State.TIMEOUT, 137)
    assert 'h_rt' in limit.reason
    killed = qacct('qacct_qdel_running.txt')
    assert (killed.state, killed.exitcode) == (State.FAILED, 137)
    assert 'signal 9' in killed.reason
    term = qacct('qacct_sigterm.txt')
    assert (term.state, term.exitcode) == (State.FAILED, 143)
    eqw = qacct('qacct_eqw_output_file.txt')      # failed 26, exit_status 0: never success
    assert eqw.state is State.FAILED and eqw.exitcode is None
    assert 'opening input/output file' in eqw.reason


def test_a_requeued_job_is_judged_by_its_last_run():
    first, last = (accounting_info(r) for r in
                   parse_qacct(data('sge/qacct_requeued_then_qdel.txt')))
    assert first.state is State.PENDING and first.exitcode is None   # failed 25: runs again
    assert last.state is State.FAILED and last.exitcode == 137


def test_own_cancel_and_failed_dependency_are_named():
    system = GridEngine(FakeShell({}))
    system._cancelled.add('31')
    system._deps['32'] = ['30']
    killed = system._judged(qacct('qacct_qdel_running.txt'))
    assert killed.state is State.FAILED      # job 26 of the sample: not cancelled here
    killed.id = '31'
    assert system._judged(killed).state is State.CANCELLED
    stopped = system._judged(accounting_info({'jobnumber': '32', 'failed': '0',
                                              'exit_status': str(DEPENDENCY_EXIT)}))
    assert stopped.state is State.CANCELLED and stopped.exitcode is None
    assert stopped.reason.startswith('dependency 30 failed')
    plain = system._judged(accounting_info({'jobnumber': '33', 'failed': '0',
                                            'exit_status': str(DEPENDENCY_EXIT)}))
    assert plain.state is State.FAILED and plain.exitcode == DEPENDENCY_EXIT  # no deps


# --- header, scripts, settings ------------------------------------------------------------
GOLDEN_OPTIONS = {'name': 'align', 'cores': 4, 'mem': '4GB', 'time': '1-02:00:00',
                  'partition': 'all.q', 'account': 'lab', 'features': ['avx2'],
                  'outfile': '/data/run/align.cluster.out',
                  'errfile': '/data/run/align.cluster.err'}


def test_golden_sge_script():
    files = JobFiles('/data/run', 'align', qtype='sge')
    system = GridEngine(FakeShell({}))
    header = system.render_header(check_arguments(GOLDEN_OPTIONS), files)
    texts = system.render_scripts(files, header, 'echo "aligning"\nexit 0')
    assert list(texts) == ['/data/run/align.cluster.sge']
    check_golden('sge_align.sge', texts[files.submission])


def test_settings_name_the_pe_and_the_memory_resource(private_config):
    options = check_arguments({'cores': 2, 'mem': '3GB'})
    assert GridEngine.directive_lines(options) == [
        '#$ -S /bin/bash', '#$ -pe smp 2', '#$ -l mem_free=1536M']     # per slot
    config_file.set('sge', 'pe', 'mpi')
    config_file.set('sge', 'memory', 'h_vmem')
    try:
        assert GridEngine.directive_lines(options)[1:] == ['#$ -pe mpi 2', '#$ -l h_vmem=1536M']
    finally:
        config_file.delete('sge')
    assert config_file.get('sge') == {'pe': 'smp', 'memory': 'mem_free'}


def test_a_bad_setting_is_refused_naming_it(private_config):
    with pytest.raises(ConfigError, match="'two words' is not a name"):
        config_file.set('sge', 'pe', 'two words')
    with pytest.raises(ConfigError, match="unknown key 'slots'|'slots'"):
        config_file.set('sge', 'slots', 4)


def test_export_and_begin_forms():
    assert GridEngine.arguments('export', 'ALL') == ['-V']
    assert GridEngine.arguments('export', 'NONE') == []
    assert GridEngine.arguments('begin', '12:30:00') == ['-a 1230.00']


# --- detection -----------------------------------------------------------------------------
def _which(*present):
    return lambda argv: (0, f'/usr/bin/{argv[1]}\n', '') if argv[1] in present else (1, '', '')


def test_detection_through_a_shell():
    sge_help = (0, data('sge/qstat_help_sge.txt'), '')
    wrapper_help = (0, data('sge/torque_wrapper_qstat_help.txt'), '')
    assert batch.detect_with(FakeShell({'which': _which('sbatch', 'qsub'), 'qstat': sge_help}),
                             remote=True) == 'slurm'
    assert batch.detect_with(FakeShell({'which': _which('qsub'), 'qstat': sge_help}),
                             remote=True) == 'sge'
    no_root = (1, '', 'critical error: Please set the environment variable SGE_ROOT.\n')
    assert batch.detect_with(FakeShell({'which': _which('qsub'), 'qstat': no_root}),
                             remote=True) == 'sge'
    torque = FakeShell({'which': _which('qsub'), 'qstat': wrapper_help,
                        'printenv': (1, '', '')})
    assert batch.detect_with(torque, remote=True) == 'torque'
    root_set = FakeShell({'which': _which('qsub'), 'qstat': wrapper_help,
                          'printenv': (0, '/opt/sge\n', '')})
    assert batch.detect_with(root_set, remote=True) == 'sge'


@sge_live
def test_detection_here_tells_grid_engine_from_the_torque_wrappers(monkeypatch):
    assert batch.found('torque') and not batch.found('sge')          # /usr/bin/qsub
    use_sge(monkeypatch)
    assert batch.found('sge') and not batch.found('torque')
    assert not cluster.queue.check_queue('torque')      # Torque's flags would reach GE's qsub
    monkeypatch.delenv('SGE_ROOT')                       # qstat -help alone tells it
    assert batch.found('sge') and not batch.found('torque')


# --- live ----------------------------------------------------------------------------------
@pytest.fixture
def sge(monkeypatch, in_tmp):
    use_sge(monkeypatch)
    return {'qtype': 'sge'}


@sge_live
def test_a_dependent_of_a_parent_that_fails_later_never_runs(sge, in_tmp):
    parent = cluster.submit('sleep 2; exit 3', **sge)
    child = cluster.submit(f'echo ran > {in_tmp}/ran', **sge, depends=[parent])
    assert not child.id.startswith('unsubmitted.')     # submitted: the gate could not tell
    assert parent.get(timeout=120)[0] == 3
    assert not child.wait(timeout=120)
    assert child.info.state is State.CANCELLED and child.info.exitcode is None
    assert 'dependency' in child.info.reason and parent.id in child.info.reason
    assert not (in_tmp / 'ran').exists()
    assert 'did not run' in child.get_stderr()
    late = cluster.submit('echo never', **sge, depends=[parent])      # parent known failed
    assert late.id.startswith('unsubmitted.') and not late.wait(timeout=60)
    assert 'dependency' in late.info.reason


@sge_live
def test_a_dependent_of_a_cancelled_parent_never_runs(sge, in_tmp):
    parent = cluster.submit('sleep 60', **sge)
    child = cluster.submit(f'echo ran > {in_tmp}/ran', **sge, depends=[parent])
    deadline = time.monotonic() + 60
    while parent.state is not State.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
    parent.cancel()
    assert not parent.wait(timeout=60) and parent.info.state is State.CANCELLED
    assert not child.wait(timeout=120) and child.info.state is State.CANCELLED
    assert not (in_tmp / 'ran').exists()


@sge_live
def test_a_time_limit_is_a_timeout_with_the_true_exit_code(sge):
    job = cluster.submit('sleep 60', **sge, time=3)
    assert not job.wait(timeout=120)
    assert job.info.state is State.TIMEOUT
    assert job.info.exitcode == 137          # SIGKILL at h_rt: the code qacct records


@sge_live
def test_cores_are_slots_of_the_pe_and_memory_is_requested(sge):
    job = cluster.submit('echo "$NSLOTS $PE"', **sge, cores=2, mem='200MB')
    assert job.get(timeout=120) == (0, '2 smp\n', '')


@sge_live
def test_an_error_state_job_fails_and_leaves_the_queue(sge, in_tmp):
    job = cluster.submit('echo hi', **sge, outfile=str(in_tmp / 'no-such-dir' / 'out'))
    assert not job.wait(timeout=120)
    assert job.info.state is State.FAILED
    assert 'input/output file' in job.info.reason or 'error state' in job.info.reason
    system = batch.get('sge')
    deadline = time.monotonic() + 60
    while job.id in system.statuses([job.id]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job.id not in system.statuses([job.id])


@sge_live
def test_one_qstat_per_poll_and_one_qacct_for_many_jobs(sge, monkeypatch):
    system = GridEngine(user=getpass.getuser())
    calls = []

    def counting(argv, stdin=None, timeout=60):
        calls.append(argv[0])
        return local_shell(argv, stdin=stdin, timeout=timeout)
    system.shell = counting
    jobs = [cluster.Job(f'exit {n}', **sge) for n in range(3)]
    for job in jobs:
        job.system = system
        job.submit()
    infos = cluster.Queue(system=system).wait([job.id for job in jobs], timeout=120)
    assert [infos[job.id].exitcode for job in jobs] == [0, 1, 2]
    del calls[:]
    found = system.final_info([job.id for job in jobs])
    assert calls == ['qacct']
    assert [found[job.id].exitcode for job in jobs] == [0, 1, 2]
    del calls[:]
    system.statuses([job.id for job in jobs])
    assert calls == ['qstat']


def test_a_qsub_of_unknown_outcome_is_looked_up_by_name_not_repeated(tmp_path):
    files = JobFiles(str(tmp_path), 'once', qtype='sge')
    names = []

    def qstat(argv):
        name = names[-1] if names else ''
        return (0, f"<?xml version='1.0'?><job_info><queue_info><job_list state='running'>"
                   f"<JB_job_number>41</JB_job_number><JB_name>{name}</JB_name>"
                   f"<state>r</state></job_list></queue_info></job_info>", '')

    def qsub(argv):
        names.append(argv[argv.index('-N') + 1])
        return (124, '', 'timed out')       # the job was taken; the answer was lost
    shell = FakeShell({'qsub': qsub, 'qstat': qstat})
    system = GridEngine(shell, user='ann')
    assert system.submit(files, [], {}) == '41'
    assert shell.programs().count('qsub') == 1
    assert names[0].startswith('once.c')
    assert ['qstat', '-xml', '-u', 'ann'] in shell.calls
