"""One pod of a distributed run: find pod 0, start MindSpore's msrun with this pod's workers, and exit with
the workers' exit code (msrun itself only says whether all of them succeeded)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from contract.settings import Settings
from job.distributed import ROLE_VARIABLE, WORKER
from job.errors import EXIT_INTERNAL, EXIT_TERMINATED, BadInput, Unavailable

INDEX_VARIABLE = "JOB_COMPLETION_INDEX"  # set by Kubernetes in the pods of an Indexed Job
STATUS_DIR_VARIABLE = "FINETUNE_WORKER_STATUS_DIR"  # where each worker leaves its exit code for this launcher
LOCAL_MASTER = "127.0.0.1"


def pod_index(environ: dict[str, str], workers: int) -> int:
    """This pod's index among FT_WORKERS pods (0 when it is the only one)."""
    raw = environ.get(INDEX_VARIABLE)
    if workers == 1:
        return 0
    if raw is None or not raw.isdigit() or int(raw) >= workers:
        raise BadInput(
            f"FT_WORKERS={workers} but {INDEX_VARIABLE}={raw!r}; distributed runs are pods of an "
            f"Indexed Job with completions={workers} (render them with the launcher or the chart)"
        )
    return int(raw)


def master_address(hostname: str, index: int, service: str) -> str:
    """Pod 0's DNS name, derived from this pod's own hostname.

    An Indexed Job's pods are named <job>-<index> (also when a CronJob made the Job and chose its name), and a
    headless Service that is their subdomain gives each <hostname>.<service> an address in the namespace.
    """
    match = re.fullmatch(rf"(?P<job>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-{index}", hostname.split(".")[0])
    if match is None:
        raise BadInput(
            f"pod hostname {hostname!r} does not end in -{index} ({INDEX_VARIABLE}); distributed runs "
            f"need an Indexed Job's pods (render them with the launcher or the chart)"
        )
    return f"{match['job']}-0.{service}"


def wait_until_resolvable(name: str, timeout: float, interval: float = 1.0) -> None:
    """Block until `name` resolves (pod 0's record appears once its pod exists), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.getaddrinfo(name, None)
            return
        except socket.gaierror as exc:
            if time.monotonic() >= deadline:
                raise Unavailable(
                    f"pod 0's address {name} did not resolve within FT_MASTER_WAIT_SECONDS="
                    f"{timeout:g} ({exc.strerror}); check that the headless Service "
                    f"FT_WORKER_SERVICE exists and pod 0 is scheduled"
                ) from None
            time.sleep(interval)


def msrun_command(settings: Settings, master: str, node_rank: int, log_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mindspore.parallel.cluster.run",
        f"--worker_num={settings.world_size}",
        f"--local_worker_num={settings.devices_per_worker}",
        f"--master_addr={master}",
        f"--master_port={settings.master_port}",
        f"--node_rank={node_rank}",
        "--join=True",
        f"--cluster_time_out={int(settings.master_wait_seconds)}",
        f"--log_dir={log_dir}",
        "python",
        "-m",
        "job",
    ]


def record_exit(code: int) -> None:
    """In a worker: leave the exit code where the pod's launcher reads it."""
    directory = os.environ.get(STATUS_DIR_VARIABLE)
    rank = os.environ.get("RANK_ID")
    if directory and rank is not None and os.environ.get(ROLE_VARIABLE) == WORKER:
        (Path(directory) / f"rank-{rank}.exit").write_text(str(code))


def workers_exit_code(status_dir: Path, launcher_code: int, terminated: bool) -> int:
    """The first failing worker's code (the cause; msrun kills the others), else 0 when msrun succeeded."""
    codes = sorted(
        ((path.stat().st_mtime, int(path.read_text() or EXIT_INTERNAL)) for path in status_dir.glob("rank-*.exit")),
        key=lambda item: item[0],
    )
    failures = [code for _, code in codes if code != 0]
    if failures:
        return failures[0]
    if launcher_code == 0:
        return 0
    return EXIT_TERMINATED if terminated else EXIT_INTERNAL


def _forward_termination(launcher: subprocess.Popen) -> None:
    """SIGTERM to this pod's workers (not msrun's scheduler: the cluster must outlive rank 0's last commit)."""
    import psutil

    try:
        children = psutil.Process(launcher.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for child in children:
        try:
            if child.environ().get(ROLE_VARIABLE) == WORKER:
                child.send_signal(signal.SIGTERM)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


def launch(settings: Settings, environ: dict[str, str] | None = None) -> int:
    """Start this pod's share of the training processes through msrun; returns the exit code for the pod."""
    environ = dict(os.environ if environ is None else environ)
    index = pod_index(environ, settings.workers)
    master = LOCAL_MASTER
    if settings.workers > 1:
        assert settings.worker_service is not None  # the settings model requires it
        master = master_address(socket.gethostname(), index, settings.worker_service)
        wait_until_resolvable(master, settings.master_wait_seconds)
    work = Path(tempfile.mkdtemp(prefix="ft-msrun-", dir=settings.scratch_dir))
    status_dir = work / "status"
    status_dir.mkdir()
    python_dir = str(Path(sys.executable).parent)  # msrun starts workers with the `python` found on PATH
    child_environ = {
        **environ,
        STATUS_DIR_VARIABLE: str(status_dir),
        "PATH": os.pathsep.join([python_dir, environ.get("PATH", "")]),
    }
    print(
        f"msrun: pod {index} of {settings.workers}, {settings.devices_per_worker} workers here, scheduler "
        f"{master}:{settings.master_port}, logs in {work / 'logs'}",
        flush=True,
    )
    launcher = subprocess.Popen(msrun_command(settings, master, index, work / "logs"), env=child_environ)
    terminated = False

    def on_sigterm(*_) -> None:
        nonlocal terminated
        terminated = True
        _forward_termination(launcher)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        launcher_code = launcher.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    code = workers_exit_code(status_dir, launcher_code, terminated)
    if code != 0:
        print(
            f"error: the training processes of pod {index} ended with exit code {code}; the first failing "
            f"worker's error is above (logs in {work / 'logs'})",
            file=sys.stderr,
        )
    return code
