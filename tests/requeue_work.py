"""Work for the requeue tests that runs on the node (no pytest here): a counter that
checkpoints where it got to."""
from __future__ import annotations

import os
import sys
import time

import cluster


class Counter:
    """Counts to ``total``, a step every ``step`` seconds (the work), printing each step;
    its checkpoint carries the count and the attempts seen so far."""

    def __init__(self, total: int, step: float = 1.0) -> None:
        self.total, self.step = total, step
        self.done = 0
        self.starts: list = []    # (attempt, count) at the start of each attempt

    def __call__(self) -> dict:
        self.starts.append((int(os.environ.get('CLUSTER_ATTEMPT', 0)), self.done))
        print(f'attempt {self.starts[-1][0]} starts at {self.done}', flush=True)
        while self.done < self.total:
            time.sleep(self.step)  # the work: one step
            self.done += 1
            print(f'step {self.done}', flush=True)
        return {'done': self.done, 'starts': self.starts}

    def checkpoint(self) -> 'cluster.Resume':
        print(f'checkpoint at {self.done}', flush=True)
        sys.stdout.flush()
        return cluster.Resume(self)
