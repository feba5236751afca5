"""The Executor's progress bar: done, failed and running calls, with tqdm.

Shown while an Executor has calls outstanding (so while ``map``, ``wait`` or
``as_completed`` block on them), only when standard error is a terminal.
"""
from __future__ import annotations

import sys
from typing import Any, List, Tuple


class Progress:
    """A tqdm bar over the calls of an Executor's tasks; does nothing when off."""

    def __init__(self, wanted: bool) -> None:
        self.on = bool(wanted) and sys.stderr.isatty()
        self._bar: Any = None

    @staticmethod
    def counts(tasks: List[Any]) -> Tuple[int, int, int, int]:
        """(total, done, failed, running) calls."""
        total = done = failed = running = 0
        for task in tasks:
            for future in task.futures:
                total += 1
                if future.done():
                    if future.cancelled() or future.exception() is not None:
                        failed += 1
                    else:
                        done += 1
                elif future.running():
                    running += 1
        return total, done, failed, running

    def show(self, tasks: List[Any]) -> None:
        if not self.on:
            return
        total, done, failed, running = self.counts(tasks)
        if self._bar is None:
            from tqdm import tqdm  # heavy: tqdm
            self._bar = tqdm(total=total, unit='call', file=sys.stderr, leave=False)
        self._bar.total = total
        self._bar.n = done + failed
        self._bar.set_postfix(done=done, failed=failed, running=running, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
