"""Waiting out a storage outage: the one retry policy of checkpoint commits and result uploads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from job.errors import Unavailable

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 15.0
T = TypeVar("T")


def while_unavailable(
    action: Callable[[], T],
    stopped: threading.Event,
    deadline: float | None = None,
    on_retry: Callable[[Unavailable, float], None] | None = None,
) -> T:
    """`action()`, retried with doubling delays (1 s up to 15 s) while it raises Unavailable; the last
    Unavailable is raised once `stopped` is set or the next try would start after `deadline` (monotonic
    seconds). `on_retry(problem, delay)` hears of every retry before its wait. Other errors pass through."""
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return action()
        except Unavailable as problem:
            if stopped.is_set() or (deadline is not None and time.monotonic() + delay > deadline):
                raise
            if on_retry is not None:
                on_retry(problem, delay)
            if stopped.wait(delay):
                raise
            delay = min(delay * 2, MAX_DELAY_SECONDS)
