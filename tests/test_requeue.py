"""requeue=True and checkpoints (issue 14): the keywords, the refusals, the job body's
attempts, the node runner's checkpoint on a real process, and live preemption and time
limits on the real Slurm of tests/cluster/slurm_up.sh (partition ``high`` preempts the
default partition by requeue)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from requeue_helpers import started, text_of  # noqa: F401 (started: a fixture)
from support import until
from batch_helpers import FakeShell, data
import support
from conftest import REMOTE_MARKS, STATE, require, slurm_ready
from requeue_work import Counter

import cluster
from cluster.batch import State
from cluster.batch.slurm import Slurm
from cluster.job import Job
from cluster.job import records
from cluster.job.requeue import attempts_started
from cluster.options import check_arguments, option_help
from cluster.run.errors import OptionError
from cluster.script import JobFiles
from cluster.script import function
from cluster.script.body import Attempts, job_body


REMOTE_ENV = os.path.join(STATE, 'remote.env')


# --- keywords and refusals -----------------------------------------------------------------
def test_keywords_are_checked_and_documented():
    assert check_arguments({'requeue': 'yes', 'grace': '30', 'max_requeues': 0}) == \
        {'requeue': True, 'grace': 30, 'max_requeues': 0}
    for bad in ({'requeue': 2}, {'grace': 0}, {'max_requeues': -1}):
        with pytest.raises(OptionError, match=next(iter(bad))):
            check_arguments(bad)
    text = option_help(mode='table')
    assert '* - requeue' in text and 'max\\_requeues' in text
    assert '--signal=B:USR2@grace' in text and '(not available)' in option_help('torque')


@pytest.mark.parametrize('qtype', ['local', 'torque'])
def test_requeue_is_refused_at_job_time_where_the_system_cannot(qtype, tmp_path):
    with pytest.raises(OptionError, match=f'{qtype} cannot requeue.*can: slurm'):
        Job('true', qtype=qtype, requeue=True, filedir=str(tmp_path))
    Job('true', qtype=qtype, requeue=False, filedir=str(tmp_path))  # asking for none is fine


def test_slurm_scripts_ask_for_what_the_job_needs(tmp_path):
    checkpointing = Job(Counter(3), qtype='slurm', requeue=True, grace=45,
                        filedir=str(tmp_path)).write()
    command = Job('true', qtype='slurm', requeue=True, filedir=str(tmp_path)).write()
    plain = Job('true', qtype='slurm', filedir=str(tmp_path)).write()
    head = {job: open(job.files.submission).read() for job in (checkpointing, command, plain)}
    assert '#SBATCH --requeue\n#SBATCH --open-mode=append\n#SBATCH --signal=B:USR2@45\n' \
        in head[checkpointing]
    assert '#SBATCH --requeue\n' in head[command] and '--signal' not in head[command]
    assert '#SBATCH --no-requeue\n' in head[plain]
    # B: signals only the batch shell: the body must be that shell, not its child
    assert head[plain].rstrip().endswith(f'exec bash {plain.files.exec_script}')
    body = open(checkpointing.files.exec_script).read()
    assert '&\n_cluster_child=$!' in body and 'rm -f' in body
    assert '_cluster_child' not in open(command.files.exec_script).read()


def _sample_rows():
    """What the real sacct and squeue said of a requeueable job in the seconds after its
    preemption (tests/data/slurm/preempt_requeue_*: sacct's preempted run, squeue's
    PENDING/BeginTime), in the fields Slurm.final_info and Slurm.statuses ask for."""
    sacct_row = data('slurm/preempt_requeue_sacct_D.txt').splitlines()[0]
    job_id, native, code, _ = sacct_row.split('|')
    pending = [line.split(' ', 1)[-1] for line in
               data('slurm/preempt_requeue_squeue.txt').splitlines() if 'BeginTime' in line][0]
    listed_id, _, state, reason = pending.split('|')
    assert (native, listed_id, state) == ('PREEMPTED', job_id, 'PENDING')
    sacct = f'{{}}|{native}|{code}||root|vm|2026-12-01T23:39:20|2026-12-01T23:39:50\n'
    squeue = f'{job_id}|{state}|{reason}|root|(null)|N/A|N/A|low.c0123456789\n'
    return job_id, sacct, squeue


def test_requeued_and_requeue_held_are_not_final():
    from cluster.batch.slurm import map_state
    assert not map_state('REQUEUED').final and not map_state('RQ').final
    assert map_state('REQUEUE_HOLD') is State.HELD and not map_state('RH').final


def test_a_preempted_row_of_a_requeued_job_is_not_its_end():
    job_id, sacct, squeue = _sample_rows()
    shell = FakeShell({'sacct': lambda argv: (0, ''.join(
        sacct.format(i) for i in argv[argv.index('-j') + 1].split(',')), ''),
        'squeue': (0, squeue, '')})
    found = Slurm(shell).final_info([job_id, '13'])
    assert found[job_id].state is State.PENDING and found[job_id].exitcode is None
    assert found['13'].state is State.CANCELLED and found['13'].reason == 'preempted'
    asked = [call for call in shell.calls if call[0] == 'squeue']
    assert len(asked) == 1 and f'{job_id},13' in asked[0]   # one call, for preempted rows


# --- the job body at each attempt ----------------------------------------------------------
def _body(tmp_path, attempt: int, command: str, most: int = 3) -> JobFiles:
    files = JobFiles(str(tmp_path), 'job', qtype='slurm')
    attempts = Attempts(lines=[f'export CLUSTER_ATTEMPT={attempt}', 'export CLUSTER_REQUEUE=true'],
                        max_requeues=most, count_file=files.attempts, stale=[files.exitcode])
    with open(files.exec_script, 'w') as handle:
        handle.write(job_body(command, files.exitcode, str(tmp_path), (), attempts))
    return files


def test_an_attempt_never_sees_the_code_of_the_one_before(tmp_path):
    code = JobFiles(str(tmp_path), 'job', qtype='slurm').exitcode
    files = _body(tmp_path, 1, f'test -e {code} && exit 99; exit 7')
    with open(files.exitcode, 'w') as handle:
        handle.write('143\n')   # the preempted attempt's
    run = subprocess.run(['bash', files.exec_script], capture_output=True, text=True)
    assert run.returncode == 7
    assert open(files.exitcode).read() == '7\n' and open(files.attempts).read() == '2\n'


def test_an_attempt_beyond_max_requeues_does_not_run(tmp_path):
    files = _body(tmp_path, 3, 'touch ran', most=2)
    run = subprocess.run(['bash', files.exec_script], capture_output=True, text=True)
    assert run.returncode == 1 and 'max_requeues=2' in run.stderr
    assert not (tmp_path / 'ran').exists() and open(files.exitcode).read() == '1\n'


# --- the node runner's checkpoint, on a real process ---------------------------------------
def _runner(tmp_path, attempt: int, counter=None, checkpoint=None, python=sys.executable):
    """Start the runner of a Counter job as a node would, with the body's exports (with
    another ``python``: a payload for another host, as a remote job's)."""
    files = JobFiles(str(tmp_path), 'count', qtype='slurm')
    if counter is not None:
        function.write_payload(files, counter, by_value=python != sys.executable)
    env = dict(os.environ, CLUSTER_ATTEMPT=str(attempt), CLUSTER_MAX_REQUEUES='2',
               CLUSTER_REQUEUE=f'touch {tmp_path / "requeued"}',
               CLUSTER_CHECKPOINT=checkpoint or files.pickle_resume)
    out = open(tmp_path / f'out{attempt}', 'w')
    return files, subprocess.Popen([python, files.function_py], env=env, stdout=out,
                                   stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def _after_steps(tmp_path, attempt: int, steps: int) -> None:
    until(lambda: f'step {steps}\n' in (tmp_path / f'out{attempt}').read_text(), 30,
           f'{steps} steps of attempt {attempt}')


def test_the_runner_checkpoints_requeues_and_resumes(tmp_path):
    files, proc = _runner(tmp_path, 0, Counter(30, step=0.05))
    _after_steps(tmp_path, 0, 3)
    proc.send_signal(signal.SIGUSR2)
    assert proc.wait(30) == 128 + signal.SIGUSR2, proc.stderr.read()
    assert (tmp_path / 'requeued').exists() and os.path.exists(files.pickle_resume)
    assert not os.path.exists(files.pickle_out)
    files, proc = _runner(tmp_path, 1)
    assert proc.wait(30) == 0, proc.stderr.read()
    value = function.read_result(files)
    (first, _), (second, carried) = value['starts']
    assert (first, second, value['done']) == (0, 1, 30) and carried >= 3


def test_a_checkpoint_resumes_on_a_host_without_cluster(tmp_path):
    """A remote job's payload (by value) on a Python without cluster: the Counter's
    checkpoint returns cluster.Resume all the same, and the next attempt resumes it."""
    python = support.read_env_file(REMOTE_ENV)['CLUSTER_TEST_REMOTE_PYTHON'] \
        if os.path.isfile(REMOTE_ENV) else None
    require('the remote test Python', bool(python), 'bash tests/cluster/remote_up.sh')
    assert subprocess.run([python, '-c', 'import cluster'], cwd=tmp_path,
                          capture_output=True).returncode != 0   # not there: the point
    files, proc = _runner(tmp_path, 0, Counter(30, step=0.05), python=python)
    _after_steps(tmp_path, 0, 3)
    proc.send_signal(signal.SIGUSR2)
    assert proc.wait(30) == 128 + signal.SIGUSR2, proc.stderr.read()
    assert (tmp_path / 'requeued').exists() and os.path.exists(files.pickle_resume)
    files, proc = _runner(tmp_path, 1, python=python)
    assert proc.wait(30) == 0, proc.stderr.read()
    (first, _), (second, carried) = function.read_result(files)['starts']
    assert (first, second) == (0, 1) and carried >= 3


def test_on_sigterm_the_runner_checkpoints_but_does_not_requeue(tmp_path):
    files, proc = _runner(tmp_path, 0, Counter(1000, step=0.05))
    _after_steps(tmp_path, 0, 2)
    proc.terminate()
    assert proc.wait(30) == 128 + signal.SIGTERM
    assert os.path.exists(files.pickle_resume) and not (tmp_path / 'requeued').exists()


def test_at_max_requeues_the_checkpoint_signal_is_ignored(tmp_path):
    files, proc = _runner(tmp_path, 2, Counter(20, step=0.05))
    _after_steps(tmp_path, 2, 2)
    proc.send_signal(signal.SIGUSR2)
    assert proc.wait(30) == 0 and 'max_requeues=2 reached' in proc.stderr.read()
    assert function.read_result(files)['done'] == 20 and not (tmp_path / 'requeued').exists()


def test_a_first_attempt_ignores_a_stale_checkpoint(tmp_path):
    files, proc = _runner(tmp_path, 0, Counter(5, step=0.01))
    assert proc.wait(30) == 0
    with open(files.pickle_resume, 'wb') as handle:
        handle.write(b'not a pickle')  # left by an earlier submission of these files
    files, proc = _runner(tmp_path, 0)
    assert proc.wait(30) == 0 and function.read_result(files)['starts'] == [(0, 0)]


def test_the_variables_of_the_job_that_submitted_it_are_not_its_own(tmp_path):
    files, proc = _runner(tmp_path, 1, Counter(1000, step=0.05), checkpoint='/elsewhere')
    _after_steps(tmp_path, 1, 2)
    proc.send_signal(signal.SIGUSR2)  # not a checkpointing job: the signal ends it
    assert proc.wait(30) == -signal.SIGUSR2
    assert not os.path.exists(files.pickle_resume) and not (tmp_path / 'requeued').exists()


def test_grace_not_shorter_than_the_time_limit_is_warned_about(tmp_path, caplog):
    Job(Counter(3), qtype='slurm', requeue=True, time='00:01:00', grace=60,
        filedir=str(tmp_path))
    assert 'grace=60 s is not shorter than its time limit 00:01:00' in caplog.text


def test_resume_is_public():
    resume = cluster.Resume(print, 1, sep='-')
    assert (resume.callable, resume.args, resume.kwargs) == (print, (1,), {'sep': '-'})


# --- live, on the real Slurm with preemption -----------------------------------------------
@pytest.fixture
def slurm_cpus() -> int:
    """The CPUs of the test node, with Slurm up and its partition ``high`` there."""
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    high = subprocess.run(['scontrol', 'show', 'partition', 'high'], capture_output=True,
                          text=True)
    require('the preempting partition high', 'PriorityTier=10' in high.stdout,
            'bash tests/cluster/slurm_up.sh (PreemptType=preempt/partition_prio)')
    out = subprocess.run(['sinfo', '-h', '-o', '%c'], capture_output=True, text=True).stdout
    return int(out.split()[0])


def _preempt_when(job: Job, marker: str, cpus: int, started, tmp_path) -> float:
    """Once ``job`` printed ``marker``, submit a job on all CPUs to partition high, which
    preempts it; return when that was (time.monotonic()). A remote job's output is read
    where it is written (the test sshd's user is on this machine)."""
    until(lambda: marker in text_of(job.target.outfile), 600, f'{marker!r} from {job}')
    started(Job('true', qtype='slurm', partition='high', cores=cpus, name='preemptor',
                filedir=str(tmp_path)))
    return time.monotonic()


#: where the live jobs run: the real Slurm here, and over SSH (Xenon, the test sshd) on it
SLURM = pytest.param('slurm', marks=pytest.mark.slurm)
REMOTE = pytest.param('remote-slurm', marks=[pytest.mark.slurm, *REMOTE_MARKS])


@pytest.mark.alone
@pytest.mark.parametrize('target', [SLURM, REMOTE], indirect=True)
def test_a_preempted_checkpointing_function_resumes_from_its_checkpoint(target, slurm_cpus,
                                                                        started, tmp_path):
    job = started(Job(Counter(20), cores=slurm_cpus, requeue=True, name='resumes',
                      filedir=str(tmp_path), **target))
    preempted = _preempt_when(job, 'step 3\n', slurm_cpus, started, tmp_path)
    until(lambda: 'attempt 1 starts' in text_of(job.target.outfile), 600, 'the second attempt')
    print(f'{job.qtype} via {target}: preemption to resume: '
          f'{time.monotonic() - preempted:.1f} s')
    value = job.get(timeout=600)
    (first, _), (second, carried) = value['starts'][:2]
    assert (first, second, value['done']) == (0, 1, 20)
    assert carried >= 3, value  # the second attempt went on from the checkpoint
    assert attempts_started(job) == len(value['starts']) >= 2
    assert job.info.state is State.COMPLETED and job.get_exitcode() == 0


@pytest.mark.waits
@pytest.mark.parametrize('target', [SLURM, REMOTE], indirect=True)
def test_the_warning_signal_checkpoints_and_the_job_requeues_itself(target, slurm_cpus,
                                                                    started, tmp_path):
    """What ``--signal=B:USR2@grace`` does near the time limit, sent at once (scancel -b):
    no preemption requeues this job, the runner's ``scontrol requeue`` does, as the user
    that submitted it (the remote one over SSH)."""
    job = started(Job(Counter(40, step=0.2), requeue=True, name='warned',
                      filedir=str(tmp_path), **target))
    until(lambda: 'step 3\n' in text_of(job.target.outfile), 600, f'3 steps of {job}')
    signalled = time.monotonic()
    subprocess.run(['scancel', '--batch', '--signal=USR2', job.id], check=True)
    value = job.get(timeout=600)
    print(f'{target}: warning signal to the end of the resumed attempt: '
          f'{time.monotonic() - signalled:.1f} s')
    (first, _), (second, carried) = value['starts']
    assert (first, second, value['done']) == (0, 1, 40) and carried >= 3, value
    assert 'checkpointed on SIGUSR2; requeued' in text_of(job.target.errfile)
    assert attempts_started(job) == 2 and records.load(job.record_key)['attempts'] == 2


@pytest.mark.waits
@pytest.mark.slurm
def test_a_function_past_its_time_limit_finishes_through_checkpoints(slurm_cpus, started,
                                                                      tmp_path):
    began = time.monotonic()
    job = started(Job(Counter(90), qtype='slurm', time='00:01:00', requeue=True, grace=30,
                      max_requeues=8, name='long', filedir=str(tmp_path)))
    value = job.get(timeout=1200)
    print(f'90 s of work in 1-minute attempts: {len(value["starts"])} attempts, '
          f'{time.monotonic() - began:.0f} s')
    assert value['done'] == 90 and len(value['starts']) >= 2
    counts = [count for _, count in value['starts']]
    assert counts == sorted(counts) and counts[-1] > 0  # each attempt went on from the last


@pytest.mark.alone
@pytest.mark.parametrize('target', [SLURM, REMOTE], indirect=True)
def test_a_requeued_command_is_rerun_and_reports_its_true_code(target, slurm_cpus, started,
                                                               tmp_path):
    command = ('echo "attempt $CLUSTER_ATTEMPT"; if [ "$CLUSTER_ATTEMPT" -gt 0 ]; '
               'then exit 3; fi; sleep 600')
    job = started(Job(command, cores=slurm_cpus, requeue=True, name='rerun',
                      filedir=str(tmp_path), **target))
    _preempt_when(job, 'attempt 0\n', slurm_cpus, started, tmp_path)
    code, out, _ = job.get(timeout=600)
    assert (code, job.info.state) == (3, State.FAILED)  # the last attempt's, not 143
    assert 'attempt 0\n' in out and 'attempt 1\n' in out and attempts_started(job) == 2
    assert records.load(job.record_key)['attempts'] == 2  # the record counts them too


@pytest.mark.alone
@pytest.mark.slurm
def test_a_preempted_job_without_requeue_is_never_success(slurm_cpus, started, tmp_path):
    job = started(Job('echo started; sleep 600', qtype='slurm', cores=slurm_cpus,
                      name='norequeue', filedir=str(tmp_path)))
    _preempt_when(job, 'started\n', slurm_cpus, started, tmp_path)
    assert job.wait(timeout=600) is False
    assert job.info.state is State.CANCELLED and job.info.exitcode != 0, job.info
    assert 'preempted' in (job.info.reason or ''), job.info


@pytest.mark.alone
@pytest.mark.torque
def test_a_preempted_torque_job_is_not_rerun_unasked(slurm_cpus, started, tmp_path):
    """Through the Torque wrappers (Slurm underneath, JobRequeue=1): a job that did not ask
    for requeue (Torque cannot) ends with its preemption, as on Slurm; a rerun would show
    as attempt 1 and exit 0."""
    require('the Torque wrappers', bool(shutil.which('qsub')), 'bash tests/cluster/slurm_up.sh')
    command = ('echo "attempt ${SLURM_RESTART_COUNT:-0}"; '
               'if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then exit 0; fi; sleep 600')
    job = started(Job(command, qtype='torque', cores=slurm_cpus, name='torqued',
                      filedir=str(tmp_path)))
    _preempt_when(job, 'attempt 0\n', slurm_cpus, started, tmp_path)
    assert job.wait(timeout=600) is False, text_of(job.target.outfile)
    assert job.info.state is State.CANCELLED and job.info.exitcode != 0, job.info
    assert 'preempted' in (job.info.reason or '') and 'attempt 1' not in text_of(job.files.outfile)
