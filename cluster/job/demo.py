"""The demo pipeline behind ``cluster demo``: split a file, process the parts in parallel
as function jobs, and merge them in a job that depends on all of them.

The same code runs on a laptop (``qtype='local'``) and on a Slurm or Torque login node.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
import time
from typing import Dict, List, Optional

from .api import clean
from .core import Job
from ..run import split_file


def make_input(path: str, lines: int, seed: int = 7) -> Dict[str, float]:
    """Write a table of ``lines`` samples (with a header); return its true summary."""
    rng = random.Random(seed)
    total = 0.0
    with open(path, 'w') as handle:
        handle.write('sample\tvalue\n')
        for index in range(lines):
            value = round(rng.uniform(0, 100), 3)
            total += value
            handle.write(f's{index}\t{value}\n')
    return {'lines': lines, 'total': round(total, 3)}


def summarise(part: str, result: str) -> Dict[str, float]:
    """Count and sum the values of one part; also write the summary to ``result``."""
    count, total = 0, 0.0
    with open(part) as handle:
        next(handle)  # header
        for line in handle:
            total += float(line.split('\t')[1])
            count += 1
    summary = {'lines': count, 'total': total}
    with open(result, 'w') as handle:
        json.dump(summary, handle)
    return summary


def merge(results: List[str], output: str) -> Dict[str, float]:
    """Add up the summaries of all parts; write and return the total."""
    merged = {'lines': 0, 'total': 0.0}
    for path in results:
        with open(path) as handle:
            part = json.load(handle)
        merged['lines'] += part['lines']
        merged['total'] += part['total']
    merged['total'] = round(merged['total'], 3)
    with open(output, 'w') as handle:
        json.dump(merged, handle)
    return merged


def run_demo(qtype: Optional[str] = 'local', parts: int = 4, lines: int = 100_000,
             workdir: Optional[str] = None, verbose: bool = True,
             keep: bool = False) -> Dict[str, float]:
    """Run the pipeline and check its answer against a direct computation.

    The files it writes are removed at the end (with the temporary directory it made,
    when ``workdir`` is None) unless ``keep``; after a failure they stay for a look."""
    made = workdir is None
    workdir = os.path.abspath(workdir or tempfile.mkdtemp(prefix='cluster-demo-'))
    os.makedirs(workdir, exist_ok=True)
    started = time.perf_counter()
    samples = os.path.join(workdir, 'samples.tsv')
    expected = make_input(samples, lines)
    pieces = split_file(samples, parts)
    sums = [piece + '.json' for piece in pieces]
    workers = [Job(summarise, (piece, out), name=f'part{n}', path=workdir, qtype=qtype).submit()
               for n, (piece, out) in enumerate(zip(pieces, sums), 1)]
    final = os.path.join(workdir, 'total.json')
    merger = Job(merge, (sums, final), name='merge', path=workdir, qtype=qtype,
                 depends=workers).submit()
    answer = merger.get()
    elapsed = time.perf_counter() - started
    part_results = [job.get() for job in workers]
    clean(workers + [merger], delete_outputs=True)
    if verbose:
        print(f'cluster demo ({merger.qtype}): {parts} parts of {lines} lines in {workdir}')
        for job, result in zip(workers, part_results):
            print(f'  {job.name}: job {job.id} -> {result}')
        print(f'  merge: job {merger.id} -> {answer}  ({elapsed:.2f} s)')
    if answer != expected:
        raise RuntimeError(f'demo pipeline gave {answer}, expected {expected}; its files are '
                           f'kept in {workdir}')
    if verbose:
        print('  result matches the direct computation: OK')
    if keep:
        if verbose:
            print(f'  files kept in {workdir}')
    else:
        _remove([samples, *pieces, *sums, final], workdir if made else None)
    return answer


def _remove(paths: List[str], directory: Optional[str]) -> None:
    """Delete the demo's own files, and the directory it made when that is now empty."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if directory:
        with contextlib.suppress(OSError):
            os.rmdir(directory)
