"""`launcher run --local`: the job on this machine, with the environment its manifest gives the container."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from contract import pod
from launcher.errors import EXIT_JOB_FAILED, EXIT_SUCCEEDED, SpecError
from launcher.render import job_environment, volumes
from launcher.spec import JobSpec

# Variables of this machine a process needs to start at all; nothing else leaks into the job.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "TMPDIR")


def write_credentials(directory: Path, owner: tuple[int, int] | None = None) -> bool:
    """This machine's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY as the files the pod's credentials Secret
    becomes (readable by their owner only); False when they are not set."""
    values = {
        pod.ACCESS_KEY_FILE: os.environ.get("AWS_ACCESS_KEY_ID"),
        pod.SECRET_KEY_FILE: os.environ.get("AWS_SECRET_ACCESS_KEY"),
    }
    if not all(values.values()):
        return False
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, value in values.items():
        path = directory / name
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(str(value))
        if owner is not None:
            os.chown(path, *owner)
    if owner is not None:
        os.chown(directory, *owner)
    return True


def local_environment(spec: JobSpec, workdir: Path) -> dict[str, str]:
    """The container's variables, with volume mount paths mapped under `workdir`; the credentials Secret's files
    made from this machine's AWS_* variables (without them, boto3's own sources such as ~/.aws)."""
    mounts = {volume.path: workdir / volume.name for volume in volumes(spec) if volume.path != "/dev/shm"}
    mounts[pod.CREDENTIALS] = workdir / "s3-credentials"
    environment = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    for name, value in job_environment(spec).items():
        for mount, local in mounts.items():
            if value == mount or value.startswith(mount + "/"):
                value = str(local) + value[len(mount) :]
        environment[name] = value
    if "FT_S3_CREDENTIALS_DIR" in environment and not write_credentials(workdir / "s3-credentials"):
        del environment["FT_S3_CREDENTIALS_DIR"]
    return environment


def require_one_pod(spec: JobSpec) -> None:
    """run --local runs one pod: refuse a spec of several."""
    if spec.workers > 1:
        raise SpecError(
            f"run --local runs one pod but the spec has workers: {spec.workers}; use workers: 1 "
            f"(devices_per_worker still starts several training processes here)"
        )


def job_outcome(code: int) -> int:
    """The launcher's exit code for the job's own: 0 when it succeeded, 1 (its code printed) when it failed."""
    if code != 0:
        print(f"error: the job exited with {code}", file=sys.stderr, flush=True)
        return EXIT_JOB_FAILED
    return EXIT_SUCCEEDED


def run_local(spec: JobSpec, workdir: Path | None) -> int:
    """Run `python -m job` here; returns 0 when it succeeded, 1 when it failed."""
    require_one_pod(spec)
    workdir = (workdir or Path(".launcher") / spec.name).resolve()
    for volume in volumes(spec):
        if volume.path != "/dev/shm":
            (workdir / volume.name).mkdir(parents=True, exist_ok=True)
    code = subprocess.run([sys.executable, "-m", "job"], env=local_environment(spec, workdir), check=False).returncode
    return job_outcome(code)
