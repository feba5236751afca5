"""The real Grid Engine of tests/cluster/sge_up.sh: the facts cluster/batch/sge.py relies on.

Each test runs SGE's own commands, reached through support.sge_env()'s PATH (never /usr/bin,
which holds slurm-wlm-torque's wrappers), and pins one behaviour. The raw outputs are the
samples in tests/data/sge/ (README.txt there says how each was made): UPDATE_SGE_SAMPLES=1
rewrites them; otherwise each live output must still have its sample's shape.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Dict, List, Optional, TypeVar

import pytest

import support

pytestmark = pytest.mark.sge
SAMPLES = Path(__file__).parent / 'data' / 'sge'
T = TypeVar('T')


@pytest.fixture(scope='module')
def env() -> Dict[str, str]:
    return support.sge_env()


def run(env: Dict[str, str], *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """One SGE command, found on the SGE environment's PATH."""
    result = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)
    if check and result.returncode:
        raise AssertionError(f'{argv} exited {result.returncode}: {result.stderr}')
    return result


def qsub(env: Dict[str, str], *args: str) -> str:
    """qsub -terse ARGS: the id it prints (N, or N.1-5:1 for an array)."""
    return run(env, 'qsub', '-terse', *args).stdout.strip()


def script(path: Path, body: str) -> str:
    path.write_text('#!/bin/bash\n' + body)
    return str(path)


def wait_until(condition: Callable[[], Optional[T]], what: str, timeout: float = 60) -> T:
    """Poll ``condition`` until it returns something true, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f'not within {timeout} s: {what}')


def qstat_jobs(env: Dict[str, str], text: Optional[str] = None) -> List[Dict[str, str]]:
    """The job_list entries of ``qstat -xml`` (running and pending) as dicts of their fields."""
    root = ET.fromstring(text if text is not None else run(env, 'qstat', '-xml').stdout)
    return [{child.tag: (child.text or '') for child in entry} for entry in root.iter('job_list')]


def states(env: Dict[str, str], job: str, text: Optional[str] = None) -> List[str]:
    return [entry['state'] for entry in qstat_jobs(env, text) if entry['JB_job_number'] == job]


def qstat_when(env: Dict[str, str], job: str, expected: List[str]) -> Optional[str]:
    """The ``qstat -xml`` output when JOB's entries have the states ``expected``, else None."""
    text = run(env, 'qstat', '-xml').stdout
    return text if states(env, job, text) == expected else None


def wait_gone(env: Dict[str, str], job: str, timeout: float = 60) -> None:
    wait_until(lambda: not states(env, job), f'job {job} left qstat', timeout)


def qacct(env: Dict[str, str], job: str) -> List[Dict[str, str]]:
    """The records of ``qacct -j JOB``, each a dict of its first word to the rest."""
    return parse_qacct(run(env, 'qacct', '-j', job).stdout)


def parse_qacct(text: str) -> List[Dict[str, str]]:
    records: List[Dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith('====='):
            records.append({})
        elif line.strip() and records:
            name, _, value = line.partition(' ')
            records[-1][name] = value.strip()
    return records


def sample(name: str, text: str, shape: Callable[[str], object]) -> None:
    """Save ``text`` as tests/data/sge/NAME when UPDATE_SGE_SAMPLES is set; else check that
    the saved sample has the live output's shape (so the samples stay true to SGE)."""
    path = SAMPLES / name
    if os.environ.get('UPDATE_SGE_SAMPLES'):
        SAMPLES.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert shape(path.read_text()) == shape(text), f'{name} no longer matches; live:\n{text}'


def qacct_keys(text: str) -> object:
    return [sorted(record) for record in parse_qacct(text)]


def xml_tags(text: str) -> object:
    return sorted({element.tag for element in ET.fromstring(text).iter()})


def first_line(text: str) -> str:
    return text.splitlines()[0]


def unique(tag: str) -> str:
    return f'{tag}-{uuid.uuid4().hex[:8]}'


# -- submission ------------------------------------------------------------------------------
def test_bash_script_with_directives_runs_as_root_in_a_clean_environment(env, tmp_path):
    name = unique('directives')
    out = tmp_path / 'out.txt'
    path = script(tmp_path / 'job.sh', f'#$ -N {name}\n#$ -o {out}\n#$ -j y\n#$ -wd {tmp_path}\n'
                  'if [[ -n $BASH_VERSION ]]; then echo "bash $BASH_VERSION"; fi\n'
                  'echo "uid=$(id -u) job=$JOB_ID name=$JOB_NAME cwd=$PWD"\n'
                  'echo "strict=${CLUSTER_TEST_STRICT-unset}"\n')
    job = qsub(env, path)
    assert re.fullmatch(r'\d+', job), job
    wait_gone(env, job)
    text = wait_until(lambda: out.exists() and out.read_text(), f'{out} written')
    assert text.startswith('bash 5.'), text          # #! honoured: shell_start_mode unix_behavior
    assert f'uid=0 job={job} name={name} cwd={tmp_path}\n' in text
    assert 'strict=unset' in text, 'a job must not inherit the submitter environment'


def test_terse_ids_of_a_job_and_an_array(env, tmp_path):
    job = run(env, 'qsub', '-terse', '-b', 'y', '-o', '/dev/null', '-j', 'y', 'true').stdout
    array = run(env, 'qsub', '-terse', '-t', '1-5', '-b', 'y', '-o', '/dev/null', '-j', 'y',
                'true').stdout
    assert re.fullmatch(r'\d+\n', job), job
    assert re.fullmatch(r'(\d+)\.1-5:1\n', array), array
    assert int(array.split('.')[0]) > int(job)
    sample('qsub_terse_job.txt', job, lambda text: bool(re.fullmatch(r'\d+\n', text)))
    sample('qsub_terse_array.txt', array,
           lambda text: bool(re.fullmatch(r'\d+\.1-5:1\n', text)))
    for each in (job.strip(), array.split('.')[0]):
        wait_gone(env, each)


def test_qstat_xml_lists_running_pending_and_held_jobs(env, tmp_path):
    slots = int(env['SGE_SLOTS'])
    common = ['-o', '/dev/null', '-j', 'y', '-b', 'y']
    running = [qsub(env, *common, '-N', unique('busy'), 'sleep', '300') for _ in range(slots)]
    pending = qsub(env, *common, '-N', unique('waits'), 'true')
    held = qsub(env, *common, '-h', '-N', unique('held'), 'true')
    array = qsub(env, *common, '-t', '1-3', '-N', unique('tasks'), 'true').split('.')[0]
    try:
        def all_seen() -> Optional[str]:
            text = run(env, 'qstat', '-xml').stdout
            seen = [states(env, job, text) for job in running + [pending, held, array]]
            return text if seen == [['r']] * slots + [['qw'], ['hqw'], ['qw']] else None
        text = wait_until(all_seen, 'the busy jobs r, the others qw and hqw')
        sample('qstat_xml_running_pending_held.xml', text, xml_tags)
        entries = {entry['JB_job_number']: entry for entry in qstat_jobs(env, text)}
        assert entries[array]['tasks'] == '1-3:1'
        assert entries[running[0]]['queue_name'] == f'{env["SGE_QUEUE"]}@{os.uname().nodename}'
        # a job deleted before it started leaves no accounting record
        run(env, 'qdel', pending, held, array)
        wait_gone(env, pending)
        missing = run(env, 'qacct', '-j', pending, check=False)
        assert missing.returncode != 0
        assert f'job id {pending} not found' in missing.stderr
    finally:
        run(env, 'qdel', *running, pending, held, array, check=False)
    for job in running:
        wait_gone(env, job)


# -- accounting ------------------------------------------------------------------------------
def test_qacct_has_the_record_as_soon_as_the_job_left_qstat(env, tmp_path):
    ok = qsub(env, '-o', '/dev/null', '-j', 'y', script(tmp_path / 'ok.sh', 'echo fine\n'))
    three = qsub(env, '-o', '/dev/null', '-j', 'y', script(tmp_path / 'three.sh', 'exit 3\n'))
    for job, status, name in ((ok, '0', 'qacct_ok.txt'), (three, '3', 'qacct_exit_3.txt')):
        wait_gone(env, job)
        result = run(env, 'qacct', '-j', job, check=False)    # once: no retry, no delay
        assert result.returncode == 0, result.stderr
        [record] = parse_qacct(result.stdout)
        assert (record['jobnumber'], record['failed'], record['exit_status']) == (job, '0', status)
        sample(name, result.stdout, qacct_keys)


def test_qdel_of_a_running_job_is_failed_100_exit_137(env, tmp_path):
    job = qsub(env, '-o', '/dev/null', '-j', 'y', '-b', 'y', 'sleep', '300')
    wait_until(lambda: states(env, job) == ['r'], f'job {job} running')
    assert 'registered the job' in run(env, 'qdel', job).stdout
    wait_gone(env, job)
    text = run(env, 'qacct', '-j', job).stdout
    [record] = parse_qacct(text)
    assert record['failed'].split()[0] == '100', record['failed']
    assert record['exit_status'].split()[0] == '137', record['exit_status']
    sample('qacct_qdel_running.txt', text, qacct_keys)


def test_h_rt_kills_the_job_failed_37_exit_137(env, tmp_path):
    started = time.monotonic()
    job = qsub(env, '-o', '/dev/null', '-j', 'y', '-l', 'h_rt=0:0:2', '-b', 'y', 'sleep', '300')
    wait_gone(env, job, timeout=90)
    assert time.monotonic() - started < 60
    text = run(env, 'qacct', '-j', job).stdout
    [record] = parse_qacct(text)
    assert record['failed'].startswith('37'), record['failed']   # "qmaster enforced h_rt ..."
    assert record['exit_status'].split()[0] == '137', record['exit_status']
    assert record['category'] == '-l h_rt=2'
    sample('qacct_h_rt.txt', text, qacct_keys)


# -- dependencies, arrays, cores, memory ----------------------------------------------------
def test_hold_jid_releases_the_dependent_even_when_the_parent_failed(env, tmp_path):
    go, out = tmp_path / 'go', tmp_path / 'dependent.txt'
    parent = qsub(env, '-o', '/dev/null', '-j', 'y',
                  script(tmp_path / 'parent.sh', f'while [[ ! -e {go} ]]; do sleep 0.1; done\n'
                         'exit 3\n'))
    child = qsub(env, '-hold_jid', parent, '-o', str(out), '-j', 'y', '-b', 'y', 'echo', 'ran')
    wait_until(lambda: states(env, parent) == ['r'] and states(env, child) == ['hqw'],
               'parent running, dependent held (hqw)')
    go.touch()
    wait_gone(env, child)
    assert out.read_text() == 'ran\n'
    [record] = qacct(env, parent)
    assert record['exit_status'] == '3'          # afterok is for cluster itself to enforce


def test_array_with_task_limit_runs_at_most_two_tasks_at_once(env, tmp_path):
    body = f'echo "$SGE_TASK_ID" > {tmp_path}/task.$SGE_TASK_ID\nsleep 3\n'
    terse = qsub(env, '-t', '1-4', '-tc', '2', '-o', '/dev/null', '-j', 'y',
                 script(tmp_path / 'array.sh', body))
    job = terse.split('.')[0]
    assert terse == f'{job}.1-4:1'
    most, seen = 0, None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = run(env, 'qstat', '-xml').stdout
        entries = [e for e in qstat_jobs(env, text) if e['JB_job_number'] == job]
        if not entries:
            break
        now = sum(1 for e in entries if e['state'] == 'r')
        if now > most:
            most, seen = now, text
        time.sleep(0.2)
    else:
        raise AssertionError(f'array {job} did not end in 90 s')
    assert most == 2, f'at most {most} tasks ran at once'
    sample('qstat_xml_array_tc2.xml', seen, xml_tags)
    for task in range(1, 5):
        assert (tmp_path / f'task.{task}').read_text() == f'{task}\n'
    records = qacct(env, job)
    assert sorted(record['taskid'] for record in records) == ['1', '2', '3', '4']


def test_pe_smp_grants_the_slots(env, tmp_path):
    out = tmp_path / 'out.txt'
    job = qsub(env, '-pe', env['SGE_PE'], '2', '-o', str(out), '-j', 'y',
               script(tmp_path / 'pe.sh', 'echo "NSLOTS=$NSLOTS"\n'))
    wait_gone(env, job)
    assert out.read_text() == 'NSLOTS=2\n'
    [record] = qacct(env, job)
    assert (record['granted_pe'], record['slots']) == (env['SGE_PE'], '2')


@pytest.mark.parametrize('request_, expected', [('h_vmem=100M', '102400\n'),
                                                ('mem_free=1G', 'unlimited\n')])
def test_memory_requests_run(env, tmp_path, request_, expected):
    out = tmp_path / 'out.txt'
    job = qsub(env, '-l', request_, '-o', str(out), '-j', 'y',
               script(tmp_path / 'mem.sh', 'ulimit -v\n'))
    wait_gone(env, job)
    assert out.read_text() == expected           # h_vmem is a hard limit, mem_free is not
    [record] = qacct(env, job)
    assert (record['failed'], record['exit_status'], record['category']) == \
        ('0', '0', f'-l {request_}')


# -- detection -------------------------------------------------------------------------------
def test_qstat_help_tells_grid_engine_from_the_torque_wrapper(env):
    sge = run(env, 'qstat', '-help', check=False)
    assert first_line(sge.stdout) == 'SGE 8.1.9'
    sample('qstat_help_sge.txt', sge.stdout, first_line)
    unset = {name: value for name, value in env.items() if name != 'SGE_ROOT'}
    lost = run(unset, 'qstat', '-help', check=False)      # SGE's qstat without its SGE_ROOT
    assert (lost.returncode, lost.stdout) == (1, '')
    assert lost.stderr == 'critical error: Please set the environment variable SGE_ROOT.\n'
    owner = subprocess.run(['dpkg', '-S', '/usr/bin/qsub'], capture_output=True, text=True)
    assert owner.stdout.startswith('slurm-wlm-torque:'), 'sge_up.sh must leave Torque alone'
    for command in ('qstat', 'qsub'):
        torque = subprocess.run([f'/usr/bin/{command}', '-help'], capture_output=True, text=True,
                                timeout=60)
        assert not torque.stdout.startswith('SGE') and 'Usage:' in torque.stdout
        sample(f'torque_wrapper_{command}_help.txt', torque.stdout, first_line)


def test_an_unwritable_output_file_is_eqw_and_failed_26_with_exit_status_0(env, tmp_path):
    out = tmp_path / 'missing-dir' / 'out.txt'
    job = qsub(env, '-o', str(out), '-j', 'y', '-b', 'y', 'true')
    try:
        text = wait_until(lambda: qstat_when(env, job, ['Eqw']), f'job {job} in Eqw')
        sample('qstat_xml_eqw.xml', text, xml_tags)
        assert 'can\'t open output file' in run(env, 'qstat', '-j', job).stdout
        # the record is written while the job still waits in Eqw: failed counts, not exit_status
        text = run(env, 'qacct', '-j', job).stdout
        [record] = parse_qacct(text)
        assert record['failed'].startswith('26'), record['failed']   # "opening input/output file"
        assert record['exit_status'] == '0'
        sample('qacct_eqw_output_file.txt', text, qacct_keys)
    finally:
        run(env, 'qdel', job, check=False)
    wait_gone(env, job)


def test_a_job_killed_by_a_signal_is_failed_100_with_128_plus_the_signal(env, tmp_path):
    job = qsub(env, '-o', '/dev/null', '-j', 'y', script(tmp_path / 'sig.sh', 'kill -TERM $$\n'))
    wait_gone(env, job)
    text = run(env, 'qacct', '-j', job).stdout
    [record] = parse_qacct(text)
    assert record['failed'].split()[0] == '100', record['failed']
    assert record['exit_status'].split()[0] == '143', record['exit_status']
    sample('qacct_sigterm.txt', text, qacct_keys)


def test_qmod_rj_requeues_a_rerunnable_job_and_qacct_keeps_both_runs(env, tmp_path):
    runs = tmp_path / 'runs.txt'
    job = qsub(env, '-r', 'y', '-o', '/dev/null', '-j', 'y',
               script(tmp_path / 'again.sh', f'echo run >> {runs}\nsleep 300\n'))
    try:
        wait_until(lambda: runs.exists() and states(env, job) == ['r'], f'job {job} running')
        assert 'Pushed rescheduling' in run(env, 'qmod', '-rj', job).stdout
        wait_until(lambda: runs.read_text() == 'run\nrun\n', f'job {job} ran again')
        [first] = qacct(env, job)         # the first run's record, written at the requeue
        assert first['failed'].startswith('25'), first['failed']          # "rescheduling"
    finally:
        run(env, 'qdel', job, check=False)
    wait_gone(env, job)
    text = run(env, 'qacct', '-j', job).stdout
    records = parse_qacct(text)
    assert [r['failed'].split()[0] for r in records] == ['25', '100'], records
    sample('qacct_requeued_then_qdel.txt', text, qacct_keys)


def test_hold_jid_of_an_unknown_job_does_not_hold(env, tmp_path):
    out = tmp_path / 'out.txt'
    job = qsub(env, '-hold_jid', '99999999', '-o', str(out), '-j', 'y', '-b', 'y', 'echo', 'ran')
    wait_gone(env, job)
    assert out.read_text() == 'ran\n'     # cluster must check its dependencies itself


@pytest.mark.parametrize('args, reason', [
    (['-pe', 'nosuch', '2'], 'job rejected: the requested parallel environment "nosuch" does not exist'),
    (['-l', 'nosuch=1'], 'unknown resource "nosuch"'),
    (['-q', 'nosuch.q'], 'Job was rejected because job requests unknown queue "nosuch.q"')])
def test_a_rejected_submission_exits_1_and_says_why(env, args, reason):
    result = run(env, 'qsub', '-terse', *args, '-b', 'y', 'true', check=False)
    assert (result.returncode, result.stdout) == (1, '')
    assert result.stderr == f'Unable to run job: {reason}\nExiting.\n'


# -- arrays (the Executor's tasks) and requeue -------------------------------------------------
def test_array_tasks_count_from_1_and_a_deleted_task_has_its_own_record(env, tmp_path):
    """``$SGE_TASK_ID`` runs 1..N (``undefined`` outside arrays); ``qdel JOB.N`` of a running
    task gives that task's record failed 100, exit 137, and leaves the others alone; a
    pending task deleted so has no record; each record names its ``taskid``."""
    body = f'echo "$SGE_TASK_ID $SGE_TASK_FIRST $SGE_TASK_LAST" > {tmp_path}/task.$SGE_TASK_ID\n' \
           f'[ "$SGE_TASK_ID" = 2 ] && sleep 300\nsleep 1\n'
    job = qsub(env, '-t', '1-4', '-tc', '2', '-o', '/dev/null', '-j', 'y',
               script(tmp_path / 'array.sh', body)).split('.')[0]
    try:
        wait_until(lambda: (tmp_path / 'task.2').exists(), f'task {job}.2 running')
        assert f'job-array task {job}.2' in run(env, 'qdel', f'{job}.2').stdout
    except BaseException:
        run(env, 'qdel', job, check=False)
        raise
    wait_gone(env, job, timeout=90)
    for task in (1, 2, 3, 4):
        assert (tmp_path / f'task.{task}').read_text() == f'{task} 1 4\n'
    text = run(env, 'qacct', '-j', job).stdout
    records = {r['taskid'].split()[0]: r for r in parse_qacct(text)}
    assert sorted(records) == ['1', '2', '3', '4']
    assert records['2']['failed'].split()[0] == '100' and records['2']['exit_status'].startswith('137')
    assert all(records[t]['failed'].split()[0] == '0' for t in ('1', '3', '4'))
    sample('qacct_array_task_qdel.txt', text, qacct_keys)
    pending = qsub(env, '-t', '1-2', '-h', '-o', '/dev/null', '-j', 'y', '-b', 'y', 'true')
    pending = pending.split('.')[0]
    run(env, 'qdel', f'{pending}.2')
    run(env, 'qrls', pending)
    wait_gone(env, pending)
    assert [r['taskid'].split()[0] for r in qacct(env, pending)] == ['1']
    out = tmp_path / 'plain.txt'
    plain = qsub(env, '-o', str(out), '-j', 'y', '-b', 'y', 'echo', '"[$SGE_TASK_ID]"')
    wait_gone(env, plain)
    assert out.read_text() == '[undefined]\n'


def test_max_aj_tasks_is_in_the_global_configuration(env):
    text = run(env, 'qconf', '-sconf').stdout
    assert re.search(r'^max_aj_tasks\s+75000$', text, re.MULTILINE), text


def test_exit_99_is_rescheduled_even_without_r_y_and_the_rerun_says_restarted(env, tmp_path):
    """sge_conf(5): a job script that exits 99 runs again (unless FORBID_RESCHEDULE), ``-r n``
    or not; ``$RESTARTED`` is 0, then 1; the first run's record is failed 25, exit 99."""
    runs = tmp_path / 'runs.txt'
    body = f'echo "$RESTARTED $JOB_ID" >> {runs}\n[ "$RESTARTED" = 1 ] || exit 99\n'
    job = qsub(env, '-r', 'n', '-o', '/dev/null', '-j', 'y', script(tmp_path / 'again.sh', body))
    wait_until(lambda: runs.exists() and len(runs.read_text().splitlines()) == 2 and
               not states(env, job), f'job {job} ran twice and left', timeout=90)
    assert runs.read_text() == f'0 {job}\n1 {job}\n'
    text = run(env, 'qacct', '-j', job).stdout
    records = parse_qacct(text)
    assert [(r['failed'].split()[0], r['exit_status'].split()[0]) for r in records] == \
        [('25', '99'), ('0', '0')], records
    sample('qacct_exit_99_rescheduled.txt', text, qacct_keys)


def test_qmod_rj_refuses_a_job_that_is_not_rerunnable(env, tmp_path):
    job = qsub(env, '-r', 'n', '-o', '/dev/null', '-j', 'y', '-b', 'y', 'sleep', '300')
    try:
        wait_until(lambda: states(env, job) == ['r'], f'job {job} running')
        shown = run(env, 'qmod', '-rj', job, check=False)
        assert f'The job {job} is not restartable' in shown.stdout + shown.stderr, shown
        assert states(env, job) == ['r']
    finally:
        run(env, 'qdel', job, check=False)


def test_s_rt_warns_once_a_rescheduled_run_is_killed_at_s_rt_without_sigusr1(env, tmp_path):
    """Why cluster's checkpoint timer is its own: at s_rt every process of the job gets
    SIGUSR1, and its exit 99 is rescheduled; but the next run is killed at s_rt with no
    warning: failed 37, exit 137."""
    log = tmp_path / 'log.txt'
    body = (f"trap 'echo usr1 >> {log}; exit 99' USR1\necho start >> {log}\n"
            'for i in $(seq 60); do sleep 1; done\n')
    job = qsub(env, '-l', 's_rt=0:0:3,h_rt=0:1:0', '-o', '/dev/null', '-j', 'y',
               script(tmp_path / 'soft.sh', body))
    wait_until(lambda: log.exists() and log.read_text().count('start') == 2
               and not states(env, job), f'job {job} ran twice and left', timeout=120)
    assert log.read_text() == 'start\nusr1\nstart\n'
    text = run(env, 'qacct', '-j', job).stdout
    records = parse_qacct(text)
    assert [(r['failed'].split()[0], r['exit_status'].split()[0]) for r in records] == \
        [('25', '99'), ('37', '137')], records
    sample('qacct_s_rt_rescheduled.txt', text, qacct_keys)
