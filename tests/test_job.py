"""The Job API, run unchanged on every batch system the suite has, here and over SSH through
Xenon (see the ``target`` fixture in conftest.py)."""
from __future__ import annotations

import os
import textwrap

import pytest

import cluster
from cluster import JobError, OptionError
from cluster.batch import State
from cluster.script.function import RemoteTraceback


def add(a, b=0):
    return a + b


def explode(message):
    raise ValueError(message)


def where(target):
    """The keywords that name the batch system (not the job options) of a target."""
    return {key: value for key, value in target.items() if key in ('qtype', 'profile')}


def test_command_job_returns_code_stdout_stderr(target, in_tmp):
    job = cluster.Job('echo hi', **target).submit()
    assert job.get() == (0, 'hi\n', '')
    assert job.state == State.COMPLETED


def test_command_args_are_quoted(target, in_tmp, rundir):
    evil = 'a b; touch pwned $(touch pwned2) `touch pwned3`\nnext'
    job = cluster.Job('printf "%s|"', args=[evil, "it's"], **target).submit()
    code, out, _ = job.get()
    assert code == 0
    assert out == evil + "|it's|"
    assert not any((rundir / name).exists() for name in ('pwned', 'pwned2', 'pwned3'))


def test_function_job_returns_value(target, in_tmp):
    assert cluster.submit(add, (2,), kwargs={'b': 40}, **target).get() == 42


def test_closure_and_lambda_travel(target, in_tmp):
    offset = 10

    def shifted(x):
        return x + offset

    jobs = [cluster.submit(shifted, (1,), **target),
            cluster.submit(lambda: offset * 2, **target)]
    assert [job.get() for job in jobs] == [11, 20]


def test_failing_function_reraises_with_remote_traceback(target, in_tmp):
    job = cluster.submit(explode, ('boom',), **target)
    with pytest.raises(ValueError, match='boom') as caught:
        job.get()
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert 'in explode' in caught.value.remote_traceback
    assert 'raise ValueError(message)' in caught.value.remote_traceback
    assert job.state == State.FAILED


def test_function_from_users_own_module(target, in_tmp, monkeypatch):
    (in_tmp / 'my_pipeline_mod.py').write_text(textwrap.dedent('''
        def double(x):
            return 2 * x
    '''))
    monkeypatch.syspath_prepend(str(in_tmp))
    import my_pipeline_mod
    assert cluster.submit(my_pipeline_mod.double, (21,), **target).get() == 42


def test_imports_keyword(target, in_tmp):
    def uses_json():
        return json.dumps([1])  # noqa: F821 - provided by imports=
    job = cluster.submit(uses_json, **target, imports=['json'])
    assert job.get() == '[1]'


def test_dependencies_run_in_order(target, in_tmp, rundir):
    log = rundir / 'order.txt'
    first = cluster.submit(f'sleep 0.5; echo first >> {log}', **target)
    second = cluster.submit(f'echo second >> {log}', **target, depends=[first])
    third = cluster.submit(f'echo third >> {log}', **target, depends=[second.id])
    assert third.get()[0] == 0
    assert log.read_text().split() == ['first', 'second', 'third']


def test_failed_dependency_fails_dependent(target, in_tmp):
    bad = cluster.submit('exit 3', **target)
    child = cluster.submit('echo never', **target, depends=[bad])
    assert bad.get()[0] == 3
    assert not child.wait()
    assert child.info.state in (State.FAILED, State.CANCELLED)
    assert 'never' not in child.get_stdout()


def test_missing_command_fails_that_job_alone(target, in_tmp):
    bad = cluster.submit('no-such-program-xyz', **target)
    good = cluster.submit('echo fine', **target)
    code, _, err = bad.get()
    assert code == 127 and 'not found' in err
    assert good.get() == (0, 'fine\n', '')


def test_unpicklable_argument_is_a_clear_error(target, in_tmp):
    job = cluster.Job(add, ((n for n in range(3)),), **target)
    with pytest.raises(JobError, match='cannot pickle the call of add'):
        job.submit()
    assert job.id is None


def test_dependency_on_unsubmitted_job_is_refused(target, in_tmp):
    later = cluster.Job('true', **target)
    job = cluster.Job('true', **target, depends=[later])
    with pytest.raises(JobError, match='has not been submitted'):
        job.submit()


def test_unknown_keyword_names_it(target, in_tmp):
    with pytest.raises(OptionError, match='memroy'):
        cluster.Job('true', **target, memroy='4GB')


def test_same_name_never_shares_files(target, in_tmp):
    one = cluster.Job('echo one', name='twin', **target).submit()
    two = cluster.Job('echo two', name='twin', **target).submit()
    assert one.files.submission != two.files.submission
    assert one.outfile != two.outfile
    assert (one.get()[1], two.get()[1]) == ('one\n', 'two\n')


def test_clean_removes_the_jobs_files(target, in_tmp):
    job = cluster.submit(add, (1, 2), **target)
    assert job.get() == 3
    written = [p for p in job.files.all() if os.path.exists(p)]
    assert job.files.pickle_in in written and job.files.pickle_out in written
    job.clean()
    assert not any(os.path.exists(p) for p in job.files.scripts())
    assert os.path.exists(job.files.pickle_out)
    job.clean(delete_outputs=True)
    assert not any(os.path.exists(p) for p in job.files.all())


def test_clean_dir_deletes_only_its_own_files(target, in_tmp):
    mine = in_tmp / 'data.cluster.out'
    mine.write_text('precious')
    lookalike = in_tmp / 'notes.cluster'
    lookalike.write_text('# my own notes\n')
    job = cluster.submit('echo x', **target, name='tidy')
    job.get()
    deleted = cluster.clean_dir(str(in_tmp), **{k: v for k, v in target.items()
                                                 if k == 'profile'})
    assert job.files.submission in deleted and job.outfile in deleted
    assert mine.read_text() == 'precious' and lookalike.exists()
    assert not os.path.exists(job.files.submission)


def test_submit_file(target, in_tmp, rundir):
    script = in_tmp / 'mine.sh'
    script.write_text(f'#!/bin/bash\necho from-file > {rundir}/proof\n')
    job_id = cluster.submit_file(str(script), **where(target))
    cluster.Queue(**where(target)).wait(job_id)
    assert (rundir / 'proof').read_text() == 'from-file\n'


def test_queue_wait_accepts_jobs_ids_and_lists(target, in_tmp):
    jobs = [cluster.submit('true', **target) for _ in range(3)]
    infos = cluster.Queue(**where(target)).wait([jobs[0], jobs[1].id, [jobs[2]]])
    assert sorted(infos) == sorted(job.id for job in jobs)
    assert all(info.state == State.COMPLETED for info in infos.values())


def test_cancel_reports_cancelled_or_failed(target, in_tmp):
    blocker = cluster.submit('sleep 30', **target)
    blocker.cancel()
    assert not blocker.wait(timeout=60)
    assert blocker.info.state in (State.CANCELLED, State.FAILED)


def test_printing_a_job_shows_its_details(target, in_tmp):
    job = cluster.Job('echo hi', **target, name='shown')
    text = str(job)
    assert 'shown' in text and 'echo hi' in text and job.qtype in text
    assert 'shown' in repr(job)
