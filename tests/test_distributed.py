"""Data-parallel training through msrun: two CPU workers running the real job, a killed worker, the shards,
and how a pod finds pod 0."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import HUB_ID, job_environment
from jobprocess import JobProcess, event
from ports import free_port
from job.errors import EXIT_INTERNAL, EXIT_TERMINATED, BadInput, Unavailable
from job.msrun import master_address, pod_index, wait_until_resolvable, workers_exit_code

EPOCHS = 3
SETTINGS = {
    "FT_IMAGE_SIZE": "32",
    "FT_BATCH_SIZE": "16",
    "FT_LR_MAX": "0.02",
    "FT_WARMUP_EPOCHS": "1",
    "FT_HFLIP": "false",
    "FT_CROP_MIN_SCALE": "0.6",
    "FT_LOG_EVERY": "5",
    "FT_NUM_WORKERS": "1",
    "FT_EPOCHS": str(EPOCHS),
    "FT_KEEP_CHECKPOINTS": "0",
    "FT_EXPORT_MINDIR": "false",
    "FT_DEVICES_PER_WORKER": "2",
}


@pytest.mark.parametrize(
    "hostname, index, expected",
    [
        ("finetune-demo-1", 1, "finetune-demo-0.workers"),  # a Job the launcher named
        ("finetune-demo-0", 0, "finetune-demo-0.workers"),  # pod 0 itself
        ("nightly-29012345-3", 3, "nightly-29012345-0.workers"),  # a Job a CronJob named <cronjob>-<minutes>
        ("nightly-29012345-12.workers.team.svc.cluster.local", 12, "nightly-29012345-0.workers"),  # a full name
    ],
)
def test_pod_zero_is_derived_from_the_pods_own_hostname(hostname, index, expected):
    assert master_address(hostname, index, "workers") == expected


def test_a_hostname_that_is_not_an_indexed_pod_is_refused():
    with pytest.raises(BadInput, match="does not end in -2"):
        master_address("finetune-demo-7b9f", 2, "workers")


@pytest.mark.parametrize("environ, workers, expected", [({}, 1, 0), ({"JOB_COMPLETION_INDEX": "3"}, 4, 3)])
def test_pod_index(environ, workers, expected):
    assert pod_index(environ, workers) == expected


@pytest.mark.parametrize("environ", [{}, {"JOB_COMPLETION_INDEX": "4"}, {"JOB_COMPLETION_INDEX": "x"}])
def test_several_pods_need_an_indexed_job(environ):
    with pytest.raises(BadInput, match="Indexed Job with completions=4"):
        pod_index(environ, 4)


def test_waiting_for_pod_zero_is_bounded_with_a_clear_error():
    wait_until_resolvable("localhost", timeout=1)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not resolve within FT_MASTER_WAIT_SECONDS=0.5"):
        wait_until_resolvable("pod-0.no-such-service.invalid", timeout=0.5, interval=0.1)
    assert time.monotonic() - started < 30


def test_the_pod_exits_with_the_first_failing_workers_code(tmp_path):
    assert workers_exit_code(tmp_path, 0, terminated=False) == 0
    assert workers_exit_code(tmp_path, 1, terminated=False) == EXIT_INTERNAL  # killed, nothing recorded
    assert workers_exit_code(tmp_path, 1, terminated=True) == EXIT_TERMINATED
    (tmp_path / "rank-0.exit").write_text("0")
    (tmp_path / "rank-1.exit").write_text("2")
    time.sleep(0.05)
    (tmp_path / "rank-2.exit").write_text("1")  # a later failure, caused by the first
    assert workers_exit_code(tmp_path, 1, terminated=False) == 2


def _image_digests(folder, classes, shard) -> list[str]:
    """Digests of the (unaugmented) images one shard delivers in one epoch."""
    import mindspore.dataset as ds

    from job.data import build_dataset

    ds.config.set_seed(12345)  # every rank sets the same epoch seed: one shuffle, cut into shards
    dataset = build_dataset(
        folder,
        classes,
        training=True,
        augment=False,
        hflip=False,
        crop_min_scale=1.0,
        image_size=32,
        batch_size=1,
        workers=1,
        shard=shard,
    )
    return [
        hashlib.sha256(images.asnumpy().tobytes()).hexdigest()
        for images, _ in dataset.create_tuple_iterator(num_epochs=1)
    ]


def test_shards_are_disjoint_and_cover_the_data(digits_data):
    from job.data import scan_image_folder

    folder = scan_image_folder(digits_data[0], "FT_TRAIN_DATA")
    everything = sorted(_image_digests(folder, folder.classes, None))
    first, second = _image_digests(folder, folder.classes, (2, 0)), _image_digests(folder, folder.classes, (2, 1))
    assert len(first) == len(second) == -(-folder.size // 2)  # equal shards: the ranks take equal steps
    padding = len(first) + len(second) - folder.size  # an odd count repeats one image to even the shards
    assert padding == folder.size % 2
    if padding == 0:
        assert not set(first) & set(second)
    assert sorted(set(first) | set(second)) == sorted(set(everything))


@pytest.fixture(scope="module")
def distributed_runs(tmp_path_factory, digits_data, zoo_checkpoint) -> dict:
    """A two-worker run whose rank 1 is killed after the first committed epoch, then the rerun."""
    from job.hub.publish import publish

    base = tmp_path_factory.mktemp("distributed")
    publish(base / "hub", HUB_ID, "googlenet", zoo_checkpoint)
    output = base / "output"
    environment = job_environment(
        FT_MODEL=HUB_ID,
        FT_HUB_MIRROR=str(base / "hub"),
        FT_HUB_CACHE=str(base / "hub-cache"),
        FT_TRAIN_DATA=str(digits_data[0]),
        FT_EVAL_DATA=str(digits_data[1]),
        FT_OUTPUT=str(output),
        FT_SCRATCH_DIR=str(base),
        **SETTINGS,
    )
    killed = JobProcess({**environment, "FT_MASTER_PORT": str(free_port())})
    committed = killed.wait_for(event("committed", epoch=1), timeout=600)
    rank_one = _worker(killed.process.pid, rank=1)
    rank_one.kill()
    killed_code = killed.finish(timeout=300)
    rerun = JobProcess({**environment, "FT_MASTER_PORT": str(free_port())})
    rerun_code = rerun.finish(timeout=900)
    return {
        "killed": killed,
        "killed_code": killed_code,
        "committed": committed,
        "rerun": rerun,
        "rerun_code": rerun_code,
        "output": output,
    }


def _worker(launcher_pid: int, rank: int) -> psutil.Process:
    for child in psutil.Process(launcher_pid).children(recursive=True):
        environ = child.environ()
        if environ.get("MS_ROLE") == "MS_WORKER" and environ.get("RANK_ID") == str(rank):
            return child
    raise AssertionError(f"no worker with rank {rank} under process {launcher_pid}")


@pytest.mark.slow
def test_a_killed_worker_fails_the_attempt(distributed_runs):
    killed = distributed_runs["killed"]
    assert distributed_runs["killed_code"] == EXIT_INTERNAL  # retryable: the Job starts the group again
    assert "error: the training processes of pod 0 ended with exit code 1" in killed.stderr
    assert killed.events("epoch")[-1]["epoch"] < EPOCHS


@pytest.mark.slow
def test_the_rerun_resumes_from_the_last_committed_epoch_and_completes(distributed_runs):
    rerun = distributed_runs["rerun"]
    assert distributed_runs["rerun_code"] == 0, rerun.stderr[-3000:]
    resumed = rerun.events("resumed")
    assert len(resumed) == 1 and resumed[0]["epoch"] >= distributed_runs["committed"]["epoch"]
    starts = rerun.events("start")
    assert sorted(start["rank"] for start in starts) == [0, 1]
    assert {start["first_epoch"] for start in starts} == {resumed[0]["epoch"] + 1}  # every rank resumed alike
    assert all(start["processes"] == 2 for start in starts)


@pytest.mark.slow
def test_parameters_are_identical_on_every_rank_at_the_end(distributed_runs):
    summaries = [
        line for line in distributed_runs["rerun"].json_lines() if "parameters_sha256" in line and "event" not in line
    ]
    digests = {line.get("rank", 0): line["parameters_sha256"] for line in summaries}
    assert sorted(digests) == [0, 1]
    assert digests[0] == digests[1]


@pytest.mark.slow
def test_one_committed_checkpoint_per_epoch_and_metrics_written_once(distributed_runs):
    output: Path = distributed_runs["output"]
    manifests = sorted(path.name for path in (output / "checkpoints" / "manifests").iterdir())
    assert manifests == [f"epoch-{epoch:06d}.json" for epoch in range(1, EPOCHS + 1)]
    metrics = json.loads((output / "metrics.json").read_text())
    assert [record["epoch"] for record in metrics["history"]] == list(range(1, EPOCHS + 1))
    assert metrics["summary"]["top1"] > 0.5  # three digits: learning happened
    # Only rank 0 writes: one attempt's results, uploads only from the attempts that rank 0 ran.
    assert len(list((output / "results").iterdir())) == 1
    attempts = {
        start["attempt"]
        for job in ("killed", "rerun")
        for start in distributed_runs[job].events("start")
        if start["rank"] == 0
    }
    assert {path.name for path in (output / "checkpoints" / "attempts").iterdir()} <= attempts
    epochs = [line for line in distributed_runs["rerun"].json_lines() if line.get("event") == "epoch"]
    assert all(line["rank"] == 0 for line in epochs)
    assert np.isfinite([line["loss"] for line in epochs]).all()
