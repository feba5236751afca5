"""The Executor's progress bar: done, failed and running calls, with tqdm.

Shown while an Executor has calls outstanding (so while ``map``, ``wait`` or
``as_completed`` block on them), only when standard error is a terminal. `cluster wait`
shows one of jobs by state (:func:`wait_showing`).
"""
from __future__ import annotations

import sys
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..queue import watcher as queue_watcher


class _Bar:
    """A tqdm bar of done, failed and running things, on standard error when it is a
    terminal (else it does nothing)."""

    def __init__(self, wanted: bool, unit: str, leave: bool) -> None:
        self.on = bool(wanted) and sys.stderr.isatty()
        self._unit, self._leave = unit, leave
        self._bar: Any = None

    def draw(self, total: int, done: int, failed: int, running: int) -> None:
        if self._bar is None:
            from tqdm import tqdm  # heavy: tqdm
            self._bar = tqdm(total=total, unit=self._unit, file=sys.stderr, leave=self._leave)
        self._bar.total = total
        self._bar.n = done + failed
        self._bar.set_postfix(done=done, failed=failed, running=running, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Progress(_Bar):
    """A tqdm bar over the calls of an Executor's tasks; does nothing when off."""

    def __init__(self, wanted: bool) -> None:
        super().__init__(wanted, 'call', leave=False)

    @staticmethod
    def counts(tasks: List[Any]) -> Tuple[int, int, int, int]:
        """(total, done, failed, running) calls."""
        total = done = failed = running = 0
        for task in tasks:
            for future in task.futures:
                calls = getattr(future, 'calls', 1)  # a chunk of local map: its calls
                total += calls
                if future.done():
                    if future.cancelled() or future.exception() is not None:
                        failed += calls
                    else:
                        bad = future.failed_calls() if hasattr(future, 'calls') else 0
                        failed += bad
                        done += calls - bad
                elif future.running():
                    running += calls
        return total, done, failed, running

    def show(self, tasks: List[Any]) -> None:
        if self.on:
            self.draw(*self.counts(tasks))


class StateBar(_Bar):
    """`cluster wait`'s bar: jobs done (completed), failed (any other end) and running;
    does nothing when standard error is not a terminal."""

    def __init__(self, total: int) -> None:
        super().__init__(True, 'job', leave=True)
        self.total = total

    def show(self, infos: Iterable[Any]) -> None:
        if not self.on:
            return
        done = failed = running = 0
        for info in infos:
            if info.state.final:
                done += info.state.value == 'completed'
                failed += info.state.value != 'completed'
            running += info.state.value == 'running'
        self.draw(self.total, done, failed, running)


def wait_showing(queue: Any, ids: List[str], timeout: Optional[float]) -> Dict[str, Any]:
    """``queue.wait(ids, timeout)``, with a :class:`StateBar` updated at each poll when
    standard error is a terminal."""
    bar = StateBar(len(ids))
    if not bar.on:
        return queue.wait(ids, timeout=timeout)
    watcher = queue_watcher(queue.system, queue.user)
    deadline = None if timeout is None else time.monotonic() + timeout
    step = max(0.2, watcher.interval)
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            try:
                infos = watcher.wait(ids, step if left is None else max(0.0, min(step, left)))
            except TimeoutError:
                if left is not None and left <= step:
                    raise TimeoutError(f'jobs {", ".join(ids)} not done after {timeout} s')
                bar.show(watcher.info(i) for i in ids)
                continue
            bar.show(infos.values())
            return infos
    finally:
        bar.close()
