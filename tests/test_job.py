"""The Job API, run unchanged on every batch system the suite has (see the qtype fixture)."""
from __future__ import annotations

import os
import textwrap

import pytest

import cluster
from cluster import JobError, OptionError
from cluster.batch import State
from cluster.function import RemoteTraceback


def add(a, b=0):
    return a + b


def explode(message):
    raise ValueError(message)


def test_command_job_returns_code_stdout_stderr(qtype, in_tmp):
    job = cluster.Job('echo hi', qtype=qtype).submit()
    assert job.get() == (0, 'hi\n', '')
    assert job.state == State.COMPLETED


def test_command_args_are_quoted(qtype, in_tmp):
    evil = 'a b; touch pwned $(touch pwned2) `touch pwned3`\nnext'
    job = cluster.Job('printf "%s|"', args=[evil, "it's"], qtype=qtype).submit()
    code, out, _ = job.get()
    assert code == 0
    assert out == evil + "|it's|"
    assert not any((in_tmp / name).exists() for name in ('pwned', 'pwned2', 'pwned3'))


def test_function_job_returns_value(qtype, in_tmp):
    assert cluster.submit(add, (2,), kwargs={'b': 40}, qtype=qtype).get() == 42


def test_closure_and_lambda_travel(qtype, in_tmp):
    offset = 10

    def shifted(x):
        return x + offset

    jobs = [cluster.submit(shifted, (1,), qtype=qtype),
            cluster.submit(lambda: offset * 2, qtype=qtype)]
    assert [job.get() for job in jobs] == [11, 20]


def test_failing_function_reraises_with_remote_traceback(qtype, in_tmp):
    job = cluster.submit(explode, ('boom',), qtype=qtype)
    with pytest.raises(ValueError, match='boom') as caught:
        job.get()
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert 'in explode' in caught.value.remote_traceback
    assert 'raise ValueError(message)' in caught.value.remote_traceback
    assert job.state == State.FAILED


def test_function_from_users_own_module(qtype, in_tmp, monkeypatch):
    (in_tmp / 'my_pipeline_mod.py').write_text(textwrap.dedent('''
        def double(x):
            return 2 * x
    '''))
    monkeypatch.syspath_prepend(str(in_tmp))
    import my_pipeline_mod
    assert cluster.submit(my_pipeline_mod.double, (21,), qtype=qtype).get() == 42


def test_imports_keyword(qtype, in_tmp):
    def uses_json():
        return json.dumps([1])  # noqa: F821 - provided by imports=
    job = cluster.submit(uses_json, qtype=qtype, imports=['json'])
    assert job.get() == '[1]'


def test_dependencies_run_in_order(qtype, in_tmp):
    log = in_tmp / 'order.txt'
    first = cluster.submit(f'sleep 0.5; echo first >> {log}', qtype=qtype)
    second = cluster.submit(f'echo second >> {log}', qtype=qtype, depends=[first])
    third = cluster.submit(f'echo third >> {log}', qtype=qtype, depends=[second.id])
    assert third.get()[0] == 0
    assert log.read_text().split() == ['first', 'second', 'third']


def test_failed_dependency_fails_dependent(qtype, in_tmp):
    bad = cluster.submit('exit 3', qtype=qtype)
    child = cluster.submit('echo never', qtype=qtype, depends=[bad])
    assert bad.get()[0] == 3
    assert not child.wait()
    assert child.info.state in (State.FAILED, State.CANCELLED)
    assert 'never' not in child.get_stdout()


def test_missing_command_fails_that_job_alone(qtype, in_tmp):
    bad = cluster.submit('no-such-program-xyz', qtype=qtype)
    good = cluster.submit('echo fine', qtype=qtype)
    code, _, err = bad.get()
    assert code == 127 and 'not found' in err
    assert good.get() == (0, 'fine\n', '')


def test_unpicklable_argument_is_a_clear_error(qtype, in_tmp):
    job = cluster.Job(add, ((n for n in range(3)),), qtype=qtype)
    with pytest.raises(JobError, match='cannot pickle the call of add'):
        job.submit()
    assert job.id is None


def test_dependency_on_unsubmitted_job_is_refused(qtype, in_tmp):
    later = cluster.Job('true', qtype=qtype)
    job = cluster.Job('true', qtype=qtype, depends=[later])
    with pytest.raises(JobError, match='has not been submitted'):
        job.submit()


def test_unknown_keyword_names_it(qtype, in_tmp):
    with pytest.raises(OptionError, match='memroy'):
        cluster.Job('true', qtype=qtype, memroy='4GB')


def test_same_name_never_shares_files(qtype, in_tmp):
    one = cluster.Job('echo one', name='twin', qtype=qtype).submit()
    two = cluster.Job('echo two', name='twin', qtype=qtype).submit()
    assert one.files.submission != two.files.submission
    assert one.outfile != two.outfile
    assert (one.get()[1], two.get()[1]) == ('one\n', 'two\n')


def test_clean_removes_the_jobs_files(qtype, in_tmp):
    job = cluster.submit(add, (1, 2), qtype=qtype)
    assert job.get() == 3
    written = [p for p in job.files.all() if os.path.exists(p)]
    assert job.files.pickle_in in written and job.files.pickle_out in written
    job.clean()
    assert not any(os.path.exists(p) for p in job.files.scripts())
    assert os.path.exists(job.files.pickle_out)
    job.clean(delete_outputs=True)
    assert not any(os.path.exists(p) for p in job.files.all())


def test_clean_dir_deletes_only_its_own_files(qtype, in_tmp):
    mine = in_tmp / 'data.cluster.out'
    mine.write_text('precious')
    lookalike = in_tmp / 'notes.cluster'
    lookalike.write_text('# my own notes\n')
    job = cluster.submit('echo x', qtype=qtype, name='tidy')
    job.get()
    deleted = cluster.clean_dir(str(in_tmp))
    assert job.files.submission in deleted and job.outfile in deleted
    assert mine.read_text() == 'precious' and lookalike.exists()
    assert not os.path.exists(job.files.submission)


def test_submit_file(qtype, in_tmp):
    script = in_tmp / 'mine.sh'
    script.write_text(f'#!/bin/bash\necho from-file > {in_tmp}/proof\n')
    job_id = cluster.submit_file(str(script), qtype=qtype)
    cluster.Queue(qtype=qtype).wait(job_id)
    assert (in_tmp / 'proof').read_text() == 'from-file\n'


def test_queue_wait_accepts_jobs_ids_and_lists(qtype, in_tmp):
    jobs = [cluster.submit('true', qtype=qtype) for _ in range(3)]
    infos = cluster.Queue(qtype=qtype).wait([jobs[0], jobs[1].id, [jobs[2]]])
    assert sorted(infos) == sorted(job.id for job in jobs)
    assert all(info.state == State.COMPLETED for info in infos.values())


def test_cancel_reports_cancelled_or_failed(qtype, in_tmp):
    blocker = cluster.submit('sleep 30', qtype=qtype)
    blocker.cancel()
    assert not blocker.wait(timeout=60)
    assert blocker.info.state in (State.CANCELLED, State.FAILED)


def test_printing_a_job_shows_its_details(qtype, in_tmp):
    job = cluster.Job('echo hi', qtype=qtype, name='shown')
    text = str(job)
    assert 'shown' in text and 'echo hi' in text and qtype in text
    assert 'shown' in repr(job)
