"""The CPUs this process may use: its affinity mask and its cgroup's CPU quota (a pod's CPU limit), not the
node's core count that `os.cpu_count()` reports inside a container."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _quota_v2(directory: Path) -> float | None:
    """cgroup v2: `cpu.max` is "<quota> <period>" or "max <period>"."""
    fields = (_read(directory / "cpu.max") or "").split()
    if len(fields) == 2 and fields[0] != "max" and fields[0].isdigit() and fields[1].isdigit() and int(fields[1]):
        return int(fields[0]) / int(fields[1])
    return None


def _quota_v1(directory: Path) -> float | None:
    """cgroup v1: `cpu.cfs_quota_us` (-1: none) over `cpu.cfs_period_us`."""
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    if quota and period and quota.isdigit() and period.isdigit() and int(period):
        return int(quota) / int(period)
    return None


def _ancestors(root: Path, cgroup_path: str) -> list[Path]:
    """The cgroup directory and its parents up to the mount point (a container sees "/" as its own)."""
    parts = [part for part in cgroup_path.strip("/").split("/") if part]
    return [root.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def cgroup_cpu_limit(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The tightest CPU quota on this process's cgroup and its ancestors, in CPUs; None when unlimited."""
    limits: list[float] = []
    for line in (_read(proc_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # v2: one unified hierarchy
            directories, quota = _ancestors(cgroup_root, path), _quota_v2
        elif "cpu" in controllers.split(","):  # v1: mounted as cpu, cpu,cpuacct or cpuacct,cpu
            mount = next((cgroup_root / name for name in (controllers, "cpu") if (cgroup_root / name).is_dir()), None)
            if mount is None:
                continue
            directories, quota = _ancestors(mount, path), _quota_v1
        else:
            continue
        limits += [value for value in map(quota, directories) if value is not None and value > 0]
    return min(limits) if limits else None


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """Whole CPUs this process may run on: the affinity mask, capped by the cgroup quota (rounded up, as a
    4.5-CPU limit keeps 5 threads busy part of the time); at least 1."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        allowed = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if limit is not None:
        allowed = min(allowed, math.ceil(limit))
    return max(1, allowed)


def process_share(processes: int) -> int:
    """This process's whole share of the usable CPUs when `processes` of the pod share them; at least 1."""
    return max(1, usable_cpus() // processes)
