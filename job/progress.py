"""Progress events: a live display on a terminal (epoch and step bars, loss, accuracy, images/s, ETA), one JSON
object per line otherwise (for log collectors and the launcher, which reads them back)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Writes events such as `step`, `epoch`, `eval` and `done` with their fields."""

    def __init__(
        self,
        stream: TextIO | None = None,
        as_json: bool | None = None,
        tags: dict | None = None,
        only: frozenset[str] | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.as_json = (not self.stream.isatty()) if as_json is None else as_json
        self.tags = tags or {}
        self.only = only
        self._lock = threading.Lock()  # the committer thread reports too: whole lines only
        self._listeners: list[Callable[[dict], None]] = []
        self.display = None
        if not self.as_json:
            from contract.display import LiveDisplay  # rich, only for a terminal

            self.display = LiveDisplay(self.stream)

    def for_rank(self, rank: int) -> Progress:
        """Lines tagged with a training process's rank; ranks other than 0 only say that they started and
        finished (rank 0 reports the run)."""
        return Progress(
            self.stream,
            self.as_json,
            {**self.tags, "rank": rank},
            None if rank == 0 else frozenset({"start", "replica_done"}),
        )

    def listen(self, listener: Callable[[dict], None]) -> None:
        """Pass every event written from now on to `listener` too (after writing it, outside the lock, so a
        listener may emit events itself)."""
        self._listeners.append(listener)

    def emit(self, event: str, **fields) -> None:
        if self.only is not None and event not in self.only:
            return
        item = {"event": event, "time": round(time.time(), 3), **self.tags, **fields}
        with self._lock:
            if self.display is not None:
                self.display.event(item)
            else:
                self.stream.write(json.dumps(item) + "\n")
                self.stream.flush()
        for listener in self._listeners:
            listener(item)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End the live display (its bars stay on the terminal as they were last drawn)."""
        if self.display is not None:
            self.display.close()
