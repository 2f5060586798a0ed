"""Progress lines: readable text on a terminal, one JSON object per line otherwise (for log collectors)."""

from __future__ import annotations

import json
import sys
import threading
import time
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

    def for_rank(self, rank: int) -> Progress:
        """Lines tagged with a training process's rank; ranks other than 0 only say that they started and
        finished (rank 0 reports the run)."""
        return Progress(
            self.stream,
            self.as_json,
            {**self.tags, "rank": rank},
            None if rank == 0 else frozenset({"start", "replica_done"}),
        )

    def emit(self, event: str, **fields) -> None:
        if self.only is not None and event not in self.only:
            return
        fields = {**self.tags, **fields}
        if self.as_json:
            line = json.dumps({"event": event, "time": round(time.time(), 3), **fields})
        else:
            line = f"[{event}] " + " ".join(f"{key}={_short(value)}" for key, value in fields.items())
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
