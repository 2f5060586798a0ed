"""A real MLflow tracking server for the tests: `mlflow server` on 127.0.0.1 with a SQLite store and artefacts
uploaded through the server into a local directory, both kept across restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ports import free_port, port_open

READY_SECONDS = 120  # a cold start imports MLflow's whole server (several seconds on a busy 2-core machine)
STOP_SECONDS = 15


class MlflowServer:
    """Start, stop (SIGTERM to its process group) and restart one MLflow server on the same port and stores."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()  # kept across restarts
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.startup_seconds: list[float] = []  # how long each start took to answer /health

    def start(self) -> None:
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} on 127.0.0.1 is taken; stop whatever listens there")
        started = time.monotonic()
        log = open(self.workdir / "mlflow.log", "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.workdir / 'mlflow.db'}",
                "--serve-artifacts",
                "--artifacts-destination",
                (self.workdir / "artifacts").as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            # no job runner (it starts seven task consumers that a SIGTERM to the server leaves behind)
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"},
            start_new_session=True,  # the server and its uvicorn worker stop together
        )
        self._wait_ready()
        self.startup_seconds.append(time.monotonic() - started)

    def _wait_ready(self) -> None:
        assert self.process is not None  # set by start()
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow exited with {self.process.returncode}; see {self.workdir / 'mlflow.log'}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # not listening yet
                time.sleep(0.2)
        raise RuntimeError(f"MLflow did not answer within {READY_SECONDS} s; see {self.workdir / 'mlflow.log'}")

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL if it lingers; returns once the port is closed."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        deadline = time.monotonic() + STOP_SECONDS
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)


def running_server(workdir: Path) -> Iterator[MlflowServer]:
    """A started server for a fixture (`yield from running_server(path)`), stopped at its end."""
    server = MlflowServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
