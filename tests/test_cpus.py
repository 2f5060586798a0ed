"""The CPUs a pod may use: the affinity mask (a real restricted one, through taskset) and the cgroup CPU quota
(v1 and v2 file layouts as the kernel presents them, written into a temporary tree)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from job.cpus import cgroup_cpu_limit, usable_cpus

ROOT = Path(__file__).resolve().parents[1]


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="ascii")
    return root


def _proc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text, encoding="ascii")
    return path


def test_v2_takes_the_tightest_quota_of_the_cgroup_and_its_parents(tmp_path):
    root = _tree(
        tmp_path / "fs",
        {
            "cpu.max": "max 100000",
            "kubepods/cpu.max": "max 100000",
            "kubepods/pod1/cpu.max": "400000 100000",  # the pod's limit: 4 CPUs
            "kubepods/pod1/ctr/cpu.max": "max 100000",
        },
    )
    assert cgroup_cpu_limit(root, _proc(tmp_path, "0::/kubepods/pod1/ctr\n")) == 4.0


def test_v2_inside_the_container_s_own_namespace(tmp_path):
    root = _tree(tmp_path / "fs", {"cpu.max": "250000 100000"})
    assert cgroup_cpu_limit(root, _proc(tmp_path, "0::/\n")) == 2.5


def test_v1_reads_the_cfs_quota_of_the_cpu_controller(tmp_path):
    root = _tree(
        tmp_path / "fs",
        {
            "cpu,cpuacct/kubepods/x/cpu.cfs_quota_us": "150000",
            "cpu,cpuacct/kubepods/x/cpu.cfs_period_us": "100000",
            "cpu,cpuacct/cpu.cfs_quota_us": "-1",
            "cpu,cpuacct/cpu.cfs_period_us": "100000",
        },
    )
    proc = _proc(tmp_path, "5:memory:/kubepods/x\n4:cpu,cpuacct:/kubepods/x\n0::/\n")
    assert cgroup_cpu_limit(root, proc) == 1.5


def test_no_quota_or_no_cgroup_files_means_no_limit(tmp_path):
    root = _tree(tmp_path / "fs", {"cpu.max": "max 100000"})
    assert cgroup_cpu_limit(root, _proc(tmp_path, "0::/\n")) is None
    assert cgroup_cpu_limit(tmp_path / "absent", tmp_path / "absent-proc") is None
    assert cgroup_cpu_limit(root, _proc(tmp_path, "0::/\ngarbage\n")) is None


def test_a_fractional_limit_counts_whole_cpus_and_never_exceeds_the_affinity(tmp_path):
    proc = _proc(tmp_path, "0::/\n")
    allowed = len(os.sched_getaffinity(0))
    assert usable_cpus(_tree(tmp_path / "half", {"cpu.max": "50000 100000"}), proc) == 1
    assert usable_cpus(_tree(tmp_path / "many", {"cpu.max": "6400000 100000"}), proc) == allowed
    if allowed >= 2:
        assert usable_cpus(_tree(tmp_path / "one-and-a-half", {"cpu.max": "150000 100000"}), proc) == 2


@pytest.mark.skipif(shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2, reason="needs taskset, 2 CPUs")
def test_a_restricted_affinity_sizes_the_data_pipeline_and_the_cpu_threads():
    probe = (
        "import os; from job.data import worker_count; from job.cpus import process_share; "
        "print(os.cpu_count(), worker_count(0), worker_count(0, 2), worker_count(3), process_share(1))"
    )
    result = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    node_cores, workers, shared, configured, threads = map(int, result.stdout.split())
    assert node_cores >= 2  # what a pod sees from os.cpu_count(): the node's cores
    assert (workers, shared, configured, threads) == (1, 1, 3, 1)
