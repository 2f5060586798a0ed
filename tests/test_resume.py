"""Preemption and outages, end to end through `python -m job`, on a local directory and a real S3 server."""

from __future__ import annotations

import json
import signal
import time
import pytest

from conftest import HUB_ID, job_environment
from jobprocess import JobProcess, event
from job.errors import EXIT_BAD_INPUT, EXIT_TERMINATED
from job.storage import S3Store, open_store

SETTINGS = {"FT_IMAGE_SIZE": "32", "FT_BATCH_SIZE": "16", "FT_LR_MAX": "0.02", "FT_WARMUP_EPOCHS": "1",
            "FT_HFLIP": "false", "FT_CROP_MIN_SCALE": "0.6", "FT_LOG_EVERY": "5", "FT_NUM_WORKERS": "2",
            "FT_EPOCHS": "3", "FT_KEEP_CHECKPOINTS": "0", "FT_GC_MIN_AGE_SECONDS": "0", "FT_EXPORT_MINDIR": "false"}


@pytest.fixture(scope="module")
def hub_and_data(tmp_path_factory, digits_data, zoo_checkpoint):
    from job.hub.publish import publish

    base = tmp_path_factory.mktemp("resume")
    publish(base / "hub", HUB_ID, "googlenet", zoo_checkpoint)
    return base, digits_data


def environment(hub_and_data, output: str, train: str | None = None, evaluation: str | None = None,
                **overrides: str) -> dict[str, str]:
    base, (local_train, local_eval) = hub_and_data
    return job_environment(FT_MODEL=HUB_ID, FT_HUB_MIRROR=str(base / "hub"), FT_HUB_CACHE=str(base / "hub-cache"),
                           FT_DATA_CACHE=str(base / "data-cache"), FT_TRAIN_DATA=train or str(local_train),
                           FT_EVAL_DATA=evaluation or str(local_eval), FT_OUTPUT=output, **{**SETTINGS, **overrides})


def metrics_of(output: str) -> dict:
    return json.loads(open_store(output).get_bytes("metrics.json"))


@pytest.fixture(scope="module")
def uninterrupted(hub_and_data, tmp_path_factory) -> dict:
    output = str(tmp_path_factory.mktemp("reference") / "out")
    job = JobProcess(environment(hub_and_data, output))
    assert job.finish() == 0, job.stderr[-2000:]
    return metrics_of(output)


def _stage_interrupted_upload(store) -> None:
    """What a kill in the middle of an upload leaves: part of a file under a dead attempt (and, on S3, an
    unfinished multipart upload)."""
    dead = "checkpoints/attempts/20000101T000000Z-deadbeef/epoch-000009/train_state.ckpt"
    if isinstance(store, S3Store):
        store.client.put_object(Bucket=store.bucket, Key=store._key(dead), Body=b"partial")
        store.client.create_multipart_upload(Bucket=store.bucket, Key=store._key(dead + ".mp"))
    else:
        path = store.root / dead
        path.parent.mkdir(parents=True)
        path.write_bytes(b"partial")


def test_killed_run_resumes_with_the_same_schedule(hub_and_data, uninterrupted, output_location, request):
    train = evaluation = None
    if output_location.startswith("s3://"):  # on S3, read the data from S3 too
        server = request.getfixturevalue("s3_server")
        bucket = output_location.split("/")[2]
        train = server.upload_tree(bucket, hub_and_data[1][0], "data/train")
        evaluation = server.upload_tree(bucket, hub_and_data[1][1], "data/eval")
    settings = environment(hub_and_data, output_location, train, evaluation)
    first = JobProcess(settings)
    first.wait_for(event("committed", epoch=1))
    first.wait_for(event("epoch", epoch=2))  # the commit of epoch 2 starts now: kill in the middle of it
    first.signal(signal.SIGKILL)
    first.finish()
    store = open_store(output_location)
    _stage_interrupted_upload(store)

    second = JobProcess(settings)
    assert second.finish() == 0, second.stderr[-2000:]
    resumed = second.events("resumed")
    assert len(resumed) == 1 and resumed[0]["epoch"] in (1, 2)
    assert second.events("garbage_collected")
    assert not [info.key for info in store.list("checkpoints/attempts/20000101T000000Z-deadbeef/")]
    if isinstance(store, S3Store):
        assert not store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads")

    history = metrics_of(output_location)["history"]
    assert [record["epoch"] for record in history] == [1, 2, 3]  # each epoch exactly once
    reference = uninterrupted["history"]
    assert [record["lr"] for record in history] == [record["lr"] for record in reference]  # same schedule position
    for record, expected in zip(history, reference):  # same data order and optimizer state: same losses
        assert record["loss"] == pytest.approx(expected["loss"], rel=2e-3)
    manifests = [info.key for info in store.list("checkpoints/manifests/")]
    assert manifests == [f"checkpoints/manifests/epoch-00000{epoch}.json" for epoch in (1, 2, 3)]


def test_sigterm_stops_within_the_grace_period_and_resume_completes(hub_and_data, tmp_path):
    settings = environment(hub_and_data, str(tmp_path / "out"), FT_TERM_GRACE_SECONDS="10")
    first = JobProcess(settings)
    first.wait_for(event("committed", epoch=1))
    sent = time.monotonic()
    first.signal(signal.SIGTERM)
    assert first.finish() == EXIT_TERMINATED
    assert time.monotonic() - sent < 15
    assert first.stderr.strip().splitlines()[-1].startswith("error: stopped by SIGTERM")
    assert first.events("terminated")
    second = JobProcess(settings)
    assert second.finish() == 0, second.stderr[-2000:]
    assert [record["epoch"] for record in metrics_of(str(tmp_path / "out"))["history"]] == [1, 2, 3]


def test_storage_outage_is_waited_out_without_losing_an_epoch(hub_and_data, s3_server):
    output = f"s3://{s3_server.new_bucket()}/outage"
    job = JobProcess(environment(hub_and_data, output, FT_EPOCHS="4", FT_S3_MAX_ATTEMPTS="1",
                                 FT_S3_CONNECT_TIMEOUT="1", FT_S3_READ_TIMEOUT="5"))
    job.wait_for(event("committed", epoch=1))
    s3_server.stop()
    try:
        job.wait_for(event("storage_retry"))
        job.wait_for(event("epoch", epoch=4))  # training went on to the end while the store was down
        time.sleep(2)  # results are being written and uploaded now: they wait for the store too
    finally:
        s3_server.start()
    assert job.finish() == 0, job.stderr[-2000:]
    committed = sorted(found["epoch"] for found in job.events("committed"))
    assert committed == [1, 2, 3, 4]
    assert [record["epoch"] for record in metrics_of(output)["history"]] == [1, 2, 3, 4]
    store = open_store(output)
    assert len(store.list("checkpoints/manifests/")) == 4


@pytest.mark.parametrize("problem, fragment", [
    ("credentials", "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL"),
    ("bucket", "bucket 'no-such-bucket' of s3://no-such-bucket/out does not exist"),
])
def test_bad_storage_fails_before_training(hub_and_data, s3_server, problem, fragment):
    output = "s3://no-such-bucket/out" if problem == "bucket" else f"s3://{s3_server.new_bucket()}/out"
    settings = environment(hub_and_data, output, FT_S3_MAX_ATTEMPTS="1")
    if problem == "credentials":
        settings["AWS_SECRET_ACCESS_KEY"] = "wrong"
    job = JobProcess(settings)
    assert job.finish() == EXIT_BAD_INPUT
    lines = job.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], job.stderr
    assert not job.events("start")
