"""Work that the Executor tests send to the nodes (no pytest here)."""
from __future__ import annotations

import os
import time


def attempt_of(x: int, wait_on_first: float) -> dict:
    """``x`` and the attempt that ran it; the first attempt says so on stdout, then works
    ``wait_on_first`` seconds (long enough to be preempted)."""
    attempt = int(os.environ.get('CLUSTER_ATTEMPT', 0))
    print(f'call {x} attempt {attempt}', flush=True)
    if attempt == 0:
        time.sleep(wait_on_first)
    return {'x': x, 'attempt': attempt}


def square(x: int) -> int:
    return x * x


def nap(seconds: float) -> float:
    """Sleep ``seconds``, and return them."""
    time.sleep(seconds)
    return seconds


def interval(seconds: float) -> tuple:
    """(start, end) epoch seconds of a call that sleeps ``seconds``."""
    start = time.time()
    time.sleep(seconds)
    return start, time.time()
