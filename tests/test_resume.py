"""Preemption and outages, end to end through `python -m job`, on a local directory and a real S3 server."""

from __future__ import annotations

import signal
import time

import pytest

from conftest import assert_committed, assert_same_training, environment, metrics_of, unfinished_uploads
from jobprocess import JobProcess, event
from job.errors import EXIT_BAD_INPUT, EXIT_TERMINATED
from job.storage import S3Store, open_store

pytestmark = pytest.mark.slow  # trains with MindSpore or runs a heavy tool: not in make test-fast

OUTAGE_SECONDS = 20


def _stage_interrupted_upload(store) -> None:
    """What a kill in the middle of an upload leaves: part of a file under a dead attempt (and, on S3, an
    unfinished multipart upload), and a result file of an attempt killed before it committed its results."""
    dead = "checkpoints/attempts/20000101T000000Z-deadbeef/epoch-000009/train_state.ckpt"
    dead_result = "results/20000101T000000Z-deadbeef/plots/training_curves.png"
    if isinstance(store, S3Store):
        store.client.put_object(Bucket=store.bucket, Key=store._key(dead), Body=b"partial")
        store.client.create_multipart_upload(Bucket=store.bucket, Key=store._key(dead + ".mp"))
        store.client.put_object(Bucket=store.bucket, Key=store._key(dead_result), Body=b"png")
    else:
        for key, data in ((dead, b"partial"), (dead_result, b"png")):
            path = store.root / key
            path.parent.mkdir(parents=True)
            path.write_bytes(data)


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
    assert not [info.key for info in store.list("results/20000101T000000Z-deadbeef/")]
    assert not unfinished_uploads(store)

    history = assert_committed(output_location, epochs=3, keep=0)["history"]
    assert_same_training(history, uninterrupted.metrics["history"])


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


def test_training_goes_on_through_a_storage_outage_and_everything_is_committed(hub_and_data, s3_server):
    """The S3 server is down from just after the first commit, in the middle of the run, for OUTAGE_SECONDS and
    at least until two more epochs have trained (a busy machine trains slower)."""
    epochs = 16  # about 35 s of training after the first commit on 2 cores: it outlasts the outage
    output = f"s3://{s3_server.new_bucket()}/outage"
    job = JobProcess(
        environment(
            hub_and_data,
            output,
            FT_EPOCHS=str(epochs),
            FT_KEEP_CHECKPOINTS="2",
            FT_S3_MAX_ATTEMPTS="1",
            FT_S3_CONNECT_TIMEOUT="1",
            FT_S3_READ_TIMEOUT="5",
        )
    )
    job.wait_for(event("committed", epoch=1))
    down = time.time()  # S3 refuses connections as soon as the server is asked to stop; the rest can take 15 s
    s3_server.stop()
    try:
        job.wait_for(event("storage_retry"))
        job.wait_for(event("epoch", epoch=3))
        time.sleep(max(0.0, down + OUTAGE_SECONDS - time.time()))
    finally:
        back = time.time()
        s3_server.start()
    assert job.finish() == 0, job.stderr[-2000:]

    context = f"outage from 0 to {back - down:.1f} s; events: " + str(
        [(round(found["time"] - down, 1), found["event"], found.get("epoch")) for found in job.events()]
    )
    during = [found for found in job.events() if down < found["time"] < back]
    assert [found for found in during if found["event"] == "storage_retry"], context
    # Epochs went on past the one whose commit failed first, until the end of the outage and beyond it.
    assert len([found for found in during if found["event"] == "epoch"]) >= 2, context
    assert [
        found for found in during if found["event"] in ("step", "epoch") and found["time"] > back - OUTAGE_SECONDS / 4
    ], f"training stalled; {context}"
    assert [found for found in job.events("epoch") if found["time"] > back], f"training ended first; {context}"
    assert sorted(found["epoch"] for found in job.events("committed")) == list(range(1, epochs + 1)), context
    assert_committed(output, epochs, keep=2)


@pytest.mark.parametrize(
    "problem, fragment",
    [
        ("credentials", "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL"),
        ("bucket", "bucket 'no-such-bucket' of s3://no-such-bucket/out does not exist"),
    ],
)
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
