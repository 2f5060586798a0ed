"""Progress lines: readable text on a terminal, one JSON object per line otherwise (for log collectors)."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TextIO


class Progress:
    """Writes events such as `step`, `epoch`, `eval` and `done` with their fields."""

    def __init__(self, stream: TextIO | None = None, as_json: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.as_json = (not self.stream.isatty()) if as_json is None else as_json
        self._lock = threading.Lock()  # the committer thread reports too: whole lines only

    def emit(self, event: str, **fields) -> None:
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
