"""Shared fixtures: small real data sets, a small real hub built on disk, a real S3 server, and short runs of
`python -m job` with a reference run to compare interrupted ones with."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobprocess import JobProcess
from job.checkpoints import ATTEMPTS, MANIFESTS, CheckpointLog, best_epoch, manifest_key
from contract.settings import DeviceTarget
from job.device import prepare_process
from job.storage import LocalStore, S3Store, Store, open_store
from job.storage.local import PART_SUFFIX

prepare_process(DeviceTarget.CPU)  # before any test imports MindSpore

HUB_ID = "tests/1.0/googlenet_tiny"
# A short run (3 epochs of about 25 steps on 32x32 digits, a few seconds each) keeping every checkpoint.
SHORT_RUN = {
    "FT_IMAGE_SIZE": "32",
    "FT_BATCH_SIZE": "16",
    "FT_LR_MAX": "0.02",
    "FT_WARMUP_EPOCHS": "1",
    "FT_HFLIP": "false",
    "FT_CROP_MIN_SCALE": "0.6",
    "FT_LOG_EVERY": "5",
    "FT_NUM_WORKERS": "2",
    "FT_EPOCHS": "3",
    "FT_KEEP_CHECKPOINTS": "0",
    "FT_GC_MIN_AGE_SECONDS": "0",
    "FT_EXPORT_MINDIR": "false",
}


@pytest.fixture(scope="session", autouse=True)
def private_caches(tmp_path_factory) -> None:
    """The default caches (hub, data, compiled graphs) of every job the tests start live in the session's
    temporary directory, never in ~/.cache."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory) -> tuple[Path, Path]:
    """Digits 0-2 as 32x32 RGB PNGs: (train root, eval root)."""
    from job.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("digits"), [0, 1, 2], image_size=32)


@pytest.fixture(scope="session")
def zoo_checkpoint(tmp_path_factory) -> Path:
    """A full GoogleNet (with its 10-class top) checkpoint in the model zoo's layout, freshly initialised."""
    import mindspore as ms

    from job.models.googlenet import googlenet

    path = tmp_path_factory.mktemp("zoo") / "googlenet_full.ckpt"
    ms.save_checkpoint(googlenet(num_classes=10, include_top=True), str(path))
    return path


@pytest.fixture()
def hub_root(tmp_path, zoo_checkpoint) -> Path:
    """A hub directory (mshub_res/assets/<id>.md + checkpoint) holding HUB_ID."""
    from job.hub.publish import publish

    root = tmp_path / "hub"
    publish(root, HUB_ID, "googlenet", zoo_checkpoint)
    return root


def job_environment(**settings: str) -> dict[str, str]:
    """The current environment without FT_* variables, plus the given ones."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("FT_")}
    return {**base, **settings}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """SeaweedFS on free 127.0.0.1 ports for the whole session; AWS_* variables point boto3 at it."""
    from s3server import SeaweedServer

    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    saved = {key: os.environ.get(key) for key in server.environment}
    os.environ.update(server.environment)
    yield server
    server.stop(drain=False)  # nothing restarts it: its data directory is thrown away
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(params=["local", "s3"])
def output_location(request, tmp_path) -> str:
    """An empty output location: a local directory, or a prefix in a fresh bucket of the real S3 server."""
    if request.param == "local":
        return str(tmp_path / "output")
    server = request.getfixturevalue("s3_server")
    return f"s3://{server.new_bucket()}/runs/one"


@pytest.fixture(scope="session")
def hub_and_data(tmp_path_factory, digits_data, zoo_checkpoint) -> tuple[Path, tuple[Path, Path]]:
    """A directory holding a hub with HUB_ID (and the job's caches), and the digits data set."""
    from job.hub.publish import publish

    base = tmp_path_factory.mktemp("runs")
    publish(base / "hub", HUB_ID, "googlenet", zoo_checkpoint)
    return base, digits_data


def environment(
    hub_and_data, output: str, train: str | None = None, evaluation: str | None = None, **overrides: str
) -> dict[str, str]:
    """The environment of a SHORT_RUN of the digits (or the given data) to `output`, with `overrides`."""
    base, (local_train, local_eval) = hub_and_data
    defaults = {
        "FT_MODEL": HUB_ID,
        "FT_HUB_MIRROR": str(base / "hub"),
        "FT_HUB_CACHE": str(base / "hub-cache"),
        "FT_DATA_CACHE": str(base / "data-cache"),
        "FT_TRAIN_DATA": train or str(local_train),
        "FT_EVAL_DATA": evaluation or str(local_eval),
        "FT_OUTPUT": output,
    }
    return job_environment(**{**defaults, **SHORT_RUN, **overrides})


def metrics_of(output: str) -> dict:
    return json.loads(open_store(output).get_bytes("metrics.json"))


def unfinished_uploads(store: Store) -> list[str]:
    """Checkpoint uploads a killed writer left open: S3 multipart uploads, or a local store's staging files."""
    if isinstance(store, S3Store):
        found = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store._key(ATTEMPTS))
        return [upload["Key"] for upload in found.get("Uploads", [])]
    assert isinstance(store, LocalStore)  # open_store's only other kind
    return [str(path) for path in (store.root / ATTEMPTS).rglob(f".*{PART_SUFFIX}")]


@dataclass(frozen=True)
class Reference:
    """A SHORT_RUN that was never interrupted: its metrics.json and its process (events with their times)."""

    metrics: dict
    job: JobProcess


@pytest.fixture(scope="session")
def uninterrupted(hub_and_data, tmp_path_factory) -> Reference:
    output = str(tmp_path_factory.mktemp("reference") / "out")
    job = JobProcess(environment(hub_and_data, output))
    assert job.finish() == 0, job.stderr[-2000:]
    return Reference(metrics_of(output), job)


def assert_same_training(history: list[dict], reference: list[dict], context: str = "") -> None:
    """Epoch by epoch the reference's learning-rate position (optimizer step) and, within rounding of the
    CPU kernels, its losses (same data order and optimizer state)."""
    assert [record["lr"] for record in history] == [record["lr"] for record in reference], context
    for record, expected in zip(history, reference):
        assert record["loss"] == pytest.approx(expected["loss"], rel=2e-3), f"epoch {record['epoch']}; {context}"


def assert_committed(output: str, epochs: int, keep: int, context: str = "") -> dict:
    """A finished run in `output`: each epoch exactly once in metrics.json's history; a manifest for exactly the
    retained epochs (the newest `keep` and the best; all if 0), each holding the history up to its epoch; no
    checkpoint file but those the manifests name, all in place; every file metrics.json names. Returns it."""
    store = open_store(output)
    metrics = metrics_of(output)
    history = metrics["history"]
    assert [record["epoch"] for record in history] == list(range(1, epochs + 1)), context
    best = best_epoch([(record["epoch"], record["eval"].get("top1")) for record in history])
    if keep == 0:
        retained = set(range(1, epochs + 1))
    else:
        assert best is not None, context  # retention keeps the best evaluated epoch
        retained = set(range(epochs - keep + 1, epochs + 1)) | {best}
    assert [info.key for info in store.list(MANIFESTS)] == [manifest_key(epoch) for epoch in sorted(retained)], context
    manifests = CheckpointLog(store, "observer").manifests()
    assert [manifest.epoch for manifest in manifests] == sorted(retained), context  # all of them readable
    named = {entry["key"]: entry["size"] for manifest in manifests for entry in manifest.files}
    for manifest in manifests:
        assert manifest.state["history"] == history[: manifest.epoch], f"epoch {manifest.epoch}; {context}"
    assert {info.key: info.size for info in store.list(ATTEMPTS)} == named, context
    stored = {info.key for info in store.list()}
    assert set(metrics["artefacts"].values()) <= stored, context
    return metrics
