"""A child process answering one JSON line per request: how the benchmarks drive PyTorch, whose OpenMP and
oneDNN runtimes conflict with MindSpore's in one process. Standard library only: the serving side runs in
.venv-torch's interpreter (bench/torch_peer.py, bench/torch_pipeline.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from collections.abc import Callable


def serve(operations: dict[str, Callable[..., dict]], quiet: tuple[type[Exception], ...] = ()) -> None:
    """Answer each JSON request line on standard input ({"op": name, ...arguments}) with one JSON line on
    standard output; a failed request answers {"error": "..."} (with a traceback on stderr unless its exception
    is `quiet`). Stray prints go to stderr, never into the answers."""
    answers, sys.stdout = sys.stdout, sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            answer = operations[request.pop("op")](**request)
        except Exception as exc:  # answered: the caller decides
            if not isinstance(exc, quiet):
                traceback.print_exc()
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


class PeerProcess:
    """The caller's side: `command` started with `environment`, asked one request at a time."""

    def __init__(self, command: list[str], environment: dict[str, str], name: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment
        )

    def ask(self, op: str, **request) -> dict:
        """The answer, which may be {"error": ...}."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} exited with {self.process.wait()} (its messages are above)")
        return json.loads(line)

    def call(self, op: str, **request) -> dict:
        """The answer; an error answer raises."""
        answer = self.ask(op, **request)
        if "error" in answer:
            raise RuntimeError(f"{self.name} {op}: {answer['error']}")
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)
