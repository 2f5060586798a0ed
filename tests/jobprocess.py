"""Running `python -m job` as a child process and following its JSON progress events."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable


class JobProcess:
    """The job in a child process (`python -m job`, or a command that runs it, e.g. in a container); its stdout
    events are read on a thread so the pipe never fills."""

    def __init__(self, environment: dict[str, str], command: list[str] | None = None) -> None:
        self.launched = time.time()  # the clock of the events' `time` field
        self.ended: float | None = None  # when the job closed its stdout (it exited)
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "job"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.stderr = ""
        self._events: queue.Queue[dict | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None  # stdout=PIPE
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            try:
                self._events.put(json.loads(line))
            except ValueError:
                pass
        self.ended = time.time()
        self._events.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None  # stderr=PIPE
        self.stderr = self.process.stderr.read()

    def wait_for(self, matches: Callable[[dict], bool], timeout: float = 300) -> dict:
        """The first event for which `matches` is true; fails if the job ends or the time runs out first."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching event within {timeout} s; last lines: {self.lines[-5:]}")
            try:
                event = self._events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event is None:
                self.process.wait()
                raise AssertionError(
                    f"the job ended (exit {self.process.returncode}) before the event; stderr: {self.stderr[-2000:]}"
                )
            if matches(event):
                return event

    def signal(self, number: int = signal.SIGKILL) -> None:
        self.process.send_signal(number)

    def finish(self, timeout: float = 600) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    def json_lines(self) -> list[dict]:
        """Every stdout line that is a JSON object (events and the final summary), in order."""
        found = []
        for line in self.lines:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
        return found

    def events(self, name: str | None = None) -> list[dict]:
        """The JSON events named `name` (every event if None), in the order they were printed."""
        return [line for line in self.json_lines() if "event" in line and name in (None, line["event"])]


def event(name: str, **fields) -> Callable[[dict], bool]:
    return lambda found: found.get("event") == name and all(found.get(k) == v for k, v in fields.items())
