"""MindSpore's compiled-graph cache: one directory per graph configuration, warm on a repeated run, carried with
the committed checkpoints to a resumed pod, never shared by two processes at once."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_same_training, environment, metrics_of
from jobprocess import JobProcess, event
from job.checkpoints import CheckpointLog
from job.compile_cache import ARCHIVE, LOCKS, CompileCache, _try_lock, configuration_key
from job.config import load_settings
from job.storage import open_store


USED_CACHE = "Use the compilation cache"  # MindSpore's warning when it loads a cached graph


def _settings(**overrides: str):
    base = {"FT_MODEL": "m", "FT_TRAIN_DATA": "/t", "FT_EVAL_DATA": "/e", "FT_OUTPUT": "/o", "FT_IMAGE_SIZE": "32"}
    return load_settings({**base, **overrides})


def test_the_key_follows_what_shapes_the_graphs_and_nothing_else():
    images = (100, 30)
    key = configuration_key(_settings(), 3, images, steps_per_epoch=20, processes=1)
    assert key == configuration_key(
        _settings(FT_OUTPUT="s3://b/elsewhere", FT_TRAIN_DATA="/other", FT_LOG_EVERY="1", FT_NUM_WORKERS="7"),
        3,
        images,
        20,
        1,
    )
    shaped = [
        configuration_key(_settings(), 4, images, 20, 1),
        configuration_key(_settings(), 3, (101, 30), 20, 1),  # another last batch
        configuration_key(_settings(), 3, (100, 31), 20, 1),
        configuration_key(_settings(), 3, images, 21, 1),
        configuration_key(_settings(), 3, images, 20, 2),
        configuration_key(_settings(FT_IMAGE_SIZE="64"), 3, images, 20, 1),
        configuration_key(_settings(FT_AMP_LEVEL="O2"), 3, images, 20, 1),
        configuration_key(_settings(FT_EPOCHS="7"), 3, images, 20, 1),  # the learning-rate table's length
        configuration_key(_settings(FT_MODEL="other"), 3, images, 20, 1),
        configuration_key(_settings(FT_FREEZE_BACKBONE="true"), 3, images, 20, 1),
    ]
    assert len({key, *shaped}) == len(shaped) + 1


def test_a_directory_in_use_by_another_process_is_not_shared(tmp_path):
    root = tmp_path / "compile"
    (root / LOCKS).mkdir(parents=True)
    held = _try_lock(root / LOCKS / "k.rank0")
    assert held is not None
    script = tmp_path / "enable.py"
    script.write_text(
        "import os, sys; from pathlib import Path; from job.compile_cache import CompileCache; "
        "cache = CompileCache(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])); "
        "print(cache.enable(), os.environ['MS_COMPILER_CACHE_ENABLE'])"
    )

    def enabled(*command: str, rank: int = 0) -> list[str]:
        arguments = [*command, str(root), "k", str(rank)]
        return subprocess.run(arguments, capture_output=True, text=True, check=True).stdout.split()

    assert enabled(sys.executable, str(script)) == ["False", "0"]  # rank 0's lock held here: compiles uncached
    assert enabled(sys.executable, str(script), rank=1) == ["True", "1"]  # another rank of the pod: its own graphs
    held.close()
    assert enabled(sys.executable, "-c", script.read_text()) == ["False", "0"]  # no entry script to hash
    assert enabled(sys.executable, str(script)) == ["True", "1"]


def test_packing_writes_a_new_archive_only_when_the_cache_changed(tmp_path):
    cache = CompileCache(tmp_path / "compile", "k")
    cache.directory.mkdir(parents=True)
    assert cache.pack(tmp_path) is None  # nothing compiled yet
    graphs = cache.directory / "rank_0" / "graph_cache"
    graphs.mkdir(parents=True)
    (graphs / "compile_cache_0.mindir").write_bytes(b"graph 0")
    first = cache.pack(tmp_path)
    assert first is not None and cache.pack(tmp_path) == first
    (graphs / "compile_cache_1.mindir").write_bytes(b"graph 1")
    second = cache.pack(tmp_path)
    assert second is not None and second != first and first.exists()  # the one being uploaded stays as hashed
    unpacked = CompileCache(tmp_path / "elsewhere", "k")
    assert unpacked.unpack(second) and unpacked.warm
    assert (unpacked.directory / "rank_0" / "graph_cache" / "compile_cache_1.mindir").read_bytes() == b"graph 1"
    assert not unpacked.unpack(first)  # a directory holding graphs is kept as it is


def _start(job: JobProcess) -> dict:
    return job.wait_for(event("start"))


@pytest.mark.slow
def test_a_repeated_run_starts_warm_and_another_class_count_gets_its_own_graphs(hub_and_data, tmp_path):
    cache = tmp_path / "compile"
    cold = JobProcess(environment(hub_and_data, str(tmp_path / "one"), FT_COMPILE_CACHE_DIR=str(cache)))
    assert _start(cold)["compile_cache"] == "cold"
    assert cold.finish() == 0, cold.stderr[-2000:]
    # GLOG_v=2: MindSpore's warnings, among them its word that it loaded a cached graph
    warm = JobProcess(environment(hub_and_data, str(tmp_path / "two"), FT_COMPILE_CACHE_DIR=str(cache), GLOG_v="2"))
    assert _start(warm)["compile_cache"] == "warm"
    assert warm.finish() == 0, warm.stderr[-2000:]
    assert USED_CACHE in warm.stderr
    assert_same_training(metrics_of(str(tmp_path / "two"))["history"], metrics_of(str(tmp_path / "one"))["history"])

    _, (train, evaluation) = hub_and_data  # two of the three classes: other head and optimizer shapes
    fewer = {}
    for name, source in (("train", train), ("eval", evaluation)):
        for folder in sorted(source.iterdir())[:2]:
            shutil.copytree(folder, tmp_path / f"two-classes-{name}" / folder.name)
        fewer[name] = str(tmp_path / f"two-classes-{name}")
    three = str(tmp_path / "three")
    other = JobProcess(environment(hub_and_data, three, fewer["train"], fewer["eval"], FT_COMPILE_CACHE_DIR=str(cache)))
    assert _start(other)["compile_cache"] == "cold"
    assert other.finish() == 0, other.stderr[-2000:]
    assert len([path for path in cache.iterdir() if path.name != LOCKS]) == 2


@pytest.mark.slow
def test_a_resumed_pod_starts_with_the_graphs_its_checkpoint_carries(hub_and_data, uninterrupted, tmp_path):
    output = str(tmp_path / "out")
    first = JobProcess(environment(hub_and_data, output, FT_COMPILE_CACHE_DIR=str(tmp_path / "pod-1")))
    assert _start(first)["compile_cache"] == "cold"
    first.wait_for(event("committed", epoch=1))
    first.signal(signal.SIGKILL)
    first.finish()
    (manifest,) = CheckpointLog(open_store(output), "observer").manifests()
    assert ARCHIVE in [entry["name"] for entry in manifest.files] and manifest.state["compile_cache_key"]

    second = JobProcess(environment(hub_and_data, output, FT_COMPILE_CACHE_DIR=str(tmp_path / "pod-2")))
    assert second.wait_for(event("compile_cache_restored"))["epoch"] == 1
    assert _start(second)["compile_cache"] == "warm"
    assert second.finish() == 0, second.stderr[-2000:]
    assert_same_training(metrics_of(output)["history"], uninterrupted.metrics["history"])
    (compiled,) = (tmp_path / "pod-1").rglob("compile_cache_0.mindir")
    (unpacked,) = (tmp_path / "pod-2").rglob("compile_cache_0.mindir")
    assert unpacked.stat().st_mtime == compiled.stat().st_mtime  # pod 1's graph, not compiled again


@pytest.mark.slow
def test_a_resume_with_only_the_evaluation_left_compiles_without_the_cache(hub_and_data, tmp_path):
    """Its graphs would come in another order than the cached ones (evaluation first)."""
    output = str(tmp_path / "out")
    settings = environment(hub_and_data, output, FT_EPOCHS="1", FT_COMPILE_CACHE_DIR=str(tmp_path / "compile"))
    first = JobProcess(settings)
    assert first.finish() == 0, first.stderr[-2000:]
    (Path(output) / "metrics.json").unlink()  # as if the pod died after its last commit, before its results
    second = JobProcess(settings)
    assert _start(second)["compile_cache"] == "off"
    assert second.finish() == 0, second.stderr[-2000:]
    assert metrics_of(output)["summary"]["epochs"] == 1


@pytest.mark.parametrize("filtered", [True, False], ids=["data filter", "python before 3.11.4"])
def test_unpacking_takes_only_files_under_the_directory(tmp_path, monkeypatch, filtered):
    import io
    import tarfile

    if not filtered:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        content = b"graph"
        member = tarfile.TarInfo("rank_0/graph_cache/compile_cache_0.mindir")
        member.size = len(content)
        tar.addfile(member, io.BytesIO(content))
    cache = CompileCache(tmp_path / "compile", "k")
    assert cache.unpack(good)
    assert (cache.directory / "rank_0/graph_cache/compile_cache_0.mindir").read_bytes() == b"graph"
    for name, kind in (("../outside", tarfile.REGTYPE), ("/etc/outside", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)):
        bad = tmp_path / "bad.tar"
        with tarfile.open(bad, "w") as tar:
            member = tarfile.TarInfo(name)
            member.type = kind
            member.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            tar.addfile(member, io.BytesIO(b""))
        with pytest.raises(tarfile.TarError, match="not a file of a compile cache"):
            CompileCache(tmp_path / f"other-{len(name)}", "k").unpack(bad)
    assert not (tmp_path / "outside").exists()
