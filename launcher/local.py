"""`launcher run --local`: the job on this machine, with the environment its manifest gives the container."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from contract import exits, pod
from launcher.errors import EXIT_BAD_SPEC, EXIT_JOB_FAILED, EXIT_SUCCEEDED, SpecError
from launcher.render import check_settings, container_args, job_environment, volumes
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
    """The launcher's exit code for the job's own: 0 when it succeeded, 2 when it refused its input (the
    spec or the data must change), 1 for any other failure; the job's code and its meaning are printed."""
    if code == 0:
        return EXIT_SUCCEEDED
    meaning = exits.MEANINGS.get(code, "see its output above")
    print(f"error: the job exited with {code} ({meaning})", file=sys.stderr, flush=True)
    return EXIT_BAD_SPEC if code == exits.BAD_INPUT else EXIT_JOB_FAILED


def _prepare(workdir: Path, spec: JobSpec) -> None:
    for volume in volumes(spec):
        if volume.path == "/dev/shm":
            continue
        try:
            (workdir / volume.name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpecError(
                f"--workdir {workdir}: {workdir / volume.name} cannot be made ({exc.strerror or exc}); "
                f"pass a writable directory"
            ) from None


def run_local(spec: JobSpec, workdir: Path | None, json_lines: bool = False) -> int:
    """Run `python -m job` here, after the spec's settings passed the job's own checks; returns 0 when it
    succeeded, 2 when it refused its input, 1 when it failed. `json_lines` keeps the job's output JSON lines
    even on a terminal."""
    require_one_pod(spec)
    check_settings(spec)
    workdir = (workdir or Path(".launcher") / spec.name).resolve()
    _prepare(workdir, spec)
    environment = local_environment(spec, workdir)
    command = [sys.executable, "-m", "job", *container_args(spec)]
    if not json_lines:
        return job_outcome(subprocess.run(command, env=environment, check=False).returncode)
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:  # through a pipe the job writes JSON lines, never the live display
            sys.stdout.write(line)
            sys.stdout.flush()
    return job_outcome(process.returncode)
