"""requeue=True on Grid Engine (cluster/batch/_sge_requeue.py): the header and script, how a
job script ends (exit 99 only to requeue itself), and live on the real Grid Engine of
tests/cluster/sge_up.sh: checkpoints before h_rt (the job's own timer), a rescheduled command
(qmod -rj) with its true final code, and a job without requeue that is never success."""
from __future__ import annotations

import os
import subprocess
import time

import pytest
from requeue_helpers import started, text_of  # noqa: F401 (started: a fixture)
from support import until
from conftest import use_sge
from requeue_work import Counter

from cluster.batch import State
from cluster.job import Job, records
from cluster.job.requeue import attempts_started

DEADLINE = 300


def _reported(job_id: str) -> bool:
    """True once execd reported ``job_id`` running (``qstat -j`` shows a usage line)."""
    shown = subprocess.run(['qstat', '-j', job_id], capture_output=True, text=True).stdout
    return any(line.startswith('usage') for line in shown.splitlines())


# --- scripts ------------------------------------------------------------------------------
def test_scripts_ask_for_what_the_job_needs(tmp_path):
    checkpointing = Job(Counter(3), qtype='sge', requeue=True, time='00:01:00', grace=20,
                        filedir=str(tmp_path)).write()
    command = Job('true', qtype='sge', requeue=True, time='00:01:00',
                  filedir=str(tmp_path)).write()
    plain = Job('true', qtype='sge', filedir=str(tmp_path)).write()
    text = {job: open(job.files.submission).read() for job in (checkpointing, command, plain)}
    assert '#$ -r y\n#$ -v CLUSTER_CHECKPOINT_AFTER=40\n' in text[checkpointing]
    assert '#$ -l h_rt=00:01:00\n' in text[checkpointing]
    assert '#$ -r y\n' in text[command] and 'AFTER=' not in text[command]
    assert '#$ -r n\n' in text[plain] and '_cluster_child' not in text[command]
    assert '(sleep "$CLUSTER_CHECKPOINT_AFTER" && kill -USR2 "$$")' in text[checkpointing]


@pytest.mark.parametrize('command, marked, status, code', [
    ('exit 99', False, 1, '99'),      # unasked, Grid Engine would run it again
    ('exit 100', False, 1, '100'),    # ... or leave it in an error state
    ('exit 3', False, 3, '3'),
    ('exit 0', True, 99, '0'),        # the runner asked for a requeue: exit 99
])
def test_a_script_exits_99_only_to_requeue_itself(tmp_path, command, marked, status, code):
    if marked:   # the runner asked, as its requeue command does (the attempt starts first)
        command = f'$CLUSTER_REQUEUE; {command}'
    job = Job(command, qtype='sge', requeue=True, filedir=str(tmp_path)).write()
    env = dict(os.environ, RESTARTED='0')
    done = subprocess.run(['bash', job.files.submission], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == status, done.stderr
    assert text_of(job.files.exitcode) == code + '\n'


def test_an_attempt_is_counted_from_the_attempts_file(tmp_path):
    job = Job('echo "attempt $CLUSTER_ATTEMPT"', qtype='sge', requeue=True,
              filedir=str(tmp_path)).write()
    runs = []
    for restarted in ('0', '1', '1'):
        env = dict(os.environ, RESTARTED=restarted)
        runs.append(subprocess.run(['bash', job.files.submission], env=env,
                                   capture_output=True, text=True, timeout=60).stdout)
    assert runs == ['attempt 0\n', 'attempt 1\n', 'attempt 2\n']
    assert text_of(job.files.attempts) == '3\n'


# --- live ---------------------------------------------------------------------------------
@pytest.fixture
def sge(monkeypatch, in_tmp):
    use_sge(monkeypatch)
    return {'qtype': 'sge', 'filedir': str(in_tmp)}


@pytest.mark.sge
def test_a_function_past_its_time_limit_finishes_through_checkpoints(sge, started):
    """25 s of work under h_rt=20 s with grace 10: each attempt is asked to checkpoint
    after 10 s, requeues itself (exit 99), and the next goes on from its count."""
    began = time.monotonic()
    job = started(Job(Counter(25, step=1.0), time='00:00:20', requeue=True, grace=10,
                      max_requeues=8, name='long', **sge))
    value = job.get(timeout=DEADLINE)
    print(f'25 s of work in 20 s attempts: {len(value["starts"])} attempts, '
          f'{time.monotonic() - began:.0f} s')
    assert value['done'] == 25 and len(value['starts']) >= 2, value
    counts = [count for _, count in value['starts']]
    assert counts == sorted(counts) and counts[-1] > 0  # each attempt went on from the last
    assert [attempt for attempt, _ in value['starts']] == list(range(len(value['starts'])))
    assert attempts_started(job) == len(value['starts'])
    assert job.info.state is State.COMPLETED and job.get_exitcode() == 0
    assert records.load(job.record_key)['attempts'] == len(value['starts'])


@pytest.mark.sge
def test_a_rescheduled_command_reports_its_true_final_code(sge, started):
    command = ('echo "attempt $CLUSTER_ATTEMPT"; if [ "$CLUSTER_ATTEMPT" -gt 0 ]; '
               'then exit 3; fi; sleep 600')
    job = started(Job(command, requeue=True, name='rerun', **sge))
    until(lambda: 'attempt 0\n' in text_of(job.files.outfile), DEADLINE, 'attempt 0 running')
    # until execd reported the run (qstat -j shows its usage), qmod -rj only resets
    # qmaster's record (start -/-, failed 25): the run goes on, with RESTARTED=0
    until(lambda: _reported(job.id), DEADLINE, f'job {job.id} reported running')
    done = subprocess.run(['qmod', '-rj', job.id], capture_output=True, text=True)
    assert 'Pushed rescheduling' in done.stdout, done
    code, out, _ = job.get(timeout=DEADLINE)
    assert (code, job.info.state) == (3, State.FAILED)  # the last attempt's, not 137
    assert 'attempt 0\n' in out and 'attempt 1\n' in out and attempts_started(job) == 2
    assert records.load(job.record_key)['attempts'] == 2


@pytest.mark.sge
def test_without_requeue_a_job_is_never_success(sge, started):
    """A command exiting 99 is not run again (Grid Engine would: its next run here ends
    0); qmod -rj refuses a job without requeue, and a job killed is not success."""
    once = started(Job(f'echo ran >> {sge["filedir"]}/runs; '
                       f'[ "$(wc -l < {sge["filedir"]}/runs)" -gt 1 ] || exit 99',
                       name='ninetynine', **sge))
    killed = started(Job('echo started; sleep 600', name='killed', **sge))
    assert once.wait(timeout=DEADLINE) is False
    assert (once.info.state, once.get_exitcode()) == (State.FAILED, 99)
    assert text_of(os.path.join(sge['filedir'], 'runs')) == 'ran\n'
    until(lambda: 'started\n' in text_of(killed.files.outfile), DEADLINE, 'killed running')
    refused = subprocess.run(['qmod', '-rj', killed.id], capture_output=True, text=True)
    assert 'is not restartable' in refused.stdout + refused.stderr, refused
    subprocess.run(['qdel', killed.id], capture_output=True, text=True, check=True)
    assert killed.wait(timeout=DEADLINE) is False
    assert killed.info.state is not State.COMPLETED and killed.info.exitcode != 0, killed.info
