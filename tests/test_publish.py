"""Publishing a finished run as a hub entry (`python -m job publish`, FT_PUBLISH_TO) on a local root and on the
real S3 server, and the round trip: FT_MODEL=the new id with FT_HUB_MIRROR=the root fine-tunes from it again,
its checkpoint verified by sha256. An existing id is never overwritten."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HUB_ID, environment, metrics_of
from job.errors import EXIT_BAD_INPUT
from job.hub.descriptor import parse_descriptor
from job.storage import open_store

pytestmark = pytest.mark.slow  # trains with MindSpore

PUBLISHED = "team/1.0/digits_googlenet"
RUN = {"FT_EPOCHS": "2", "FT_KEEP_CHECKPOINTS": "1"}


def job(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "job", *arguments], env=env, capture_output=True, text=True, check=False, timeout=600
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == EXIT_BAD_INPUT and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def snapshot(location: str) -> dict[str, bytes]:
    store = open_store(location)
    return {info.key: store.get_bytes(info.key) for info in store.list()}


@pytest.fixture(scope="module", params=["local", "s3"])
def roots(request, hub_and_data, tmp_path_factory) -> tuple[str, str]:
    """(a finished run's output, an empty hub root), both local or both in a bucket of the S3 server."""
    if request.param == "local":
        base = tmp_path_factory.mktemp("publish")
        output, hub_root = str(base / "out"), str(base / "published-hub")
    else:
        bucket = request.getfixturevalue("s3_server").new_bucket()
        output, hub_root = f"s3://{bucket}/runs/one", f"s3://{bucket}/hub"
    result = job(env=environment(hub_and_data, output, **RUN))
    assert result.returncode == 0, result.stderr[-3000:]
    return output, hub_root


def test_a_published_run_is_a_hub_entry_that_fine_tunes_again(roots, hub_and_data, tmp_path):
    output, hub_root = roots
    result = job("publish", output, "--hub", hub_root, "--id", PUBLISHED, env=environment(hub_and_data, output))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics, hub = metrics_of(output), open_store(hub_root)
    descriptor = parse_descriptor(hub.get_bytes(f"mshub_res/assets/{PUBLISHED}.md").decode(), "published")
    fields = descriptor.fields
    assert descriptor.model_name == "googlenet" and fields["backbone-name"] == "googlenet"
    assert fields["classes"] == metrics["classes"] and fields["num-classes"] == 3
    assert fields["evaluation"] == f"acc{metrics['exported']['metrics']['top1'] * 100:.2f}"
    assert fields["evaluation-detail"]["epoch"] == metrics["summary"]["best_epoch"]
    assert fields["train-dataset-fingerprint"] == metrics["data"]["FT_TRAIN_DATA"]["fingerprint"]
    assert fields["mindspore-version"].startswith("2.") and fields["fine-tuned-from"] == HUB_ID
    assert fields["settings"] == metrics["settings"]
    asset = descriptor.asset("ckpt")
    model_checkpoint = open_store(output).get_bytes(metrics["artefacts"]["model_checkpoint"])
    published = hub.get_bytes(f"mshub_res/assets/team/1.0/{asset.link}")
    assert asset.sha256 == hashlib.sha256(model_checkpoint).hexdigest() == hashlib.sha256(published).hexdigest()
    card = hub.get_bytes(f"mshub_res/assets/{PUBLISHED}.md").decode()
    for figure in ("digits_googlenet.training_curves.png", "digits_googlenet.confusion_matrix.png"):
        assert f"]({figure})" in card
        assert hub.get_bytes(f"mshub_res/assets/team/1.0/{figure}")[:8] == b"\x89PNG\r\n\x1a\n"
    # the round trip: the published entry is a backbone like any other, its checkpoint checked by sha256
    again = str(tmp_path / "again")
    variables = environment(
        hub_and_data, again, FT_EPOCHS="1", FT_MODEL=PUBLISHED, FT_HUB_MIRROR=hub_root, FT_HUB_CACHE=str(tmp_path)
    )
    result = job(env=variables)
    assert result.returncode == 0, result.stderr[-3000:]
    assert metrics_of(again)["settings"]["model"] == PUBLISHED
    cached = list((tmp_path / "assets").rglob("*.ckpt"))
    assert [hashlib.sha256(path.read_bytes()).hexdigest() for path in cached] == [asset.sha256]


def test_an_existing_id_is_never_overwritten(roots, hub_and_data):
    output, hub_root = roots
    variables = environment(hub_and_data, output)
    first = job("publish", output, "--hub", hub_root, "--id", "team/2.0/kept", env=variables)
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(hub_root)
    again = job("publish", output, "--hub", hub_root, "--id", "team/2.0/kept", env=variables)
    assert "already has an entry team/2.0/kept" in one_error_line(again)
    assert snapshot(hub_root) == before


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["--id", "team/1.0/x", "--require", "top1>=1.01"], "is not published: top1="),
        (["--id", "team/1.0/x", "--require", "topl>=0.5"], "summary has no topl"),
        (["--id", "no-version"], "hub id 'no-version': use owner/version/name"),
        (["--id", "team/1.0/x", "--force"], "unrecognized arguments: --force"),
    ],
)
def test_bad_input_is_one_line_and_publishes_nothing(arguments, fragment, roots, hub_and_data):
    output, hub_root = roots
    before = snapshot(hub_root)
    result = job("publish", output, "--hub", hub_root, *arguments, env=environment(hub_and_data, output))
    assert fragment in one_error_line(result)
    assert snapshot(hub_root) == before


def test_an_unfinished_run_is_not_published(hub_and_data, tmp_path):
    (tmp_path / "unfinished").mkdir()
    hub_root = str(tmp_path / "hub")
    result = job(
        "publish",
        str(tmp_path / "unfinished"),
        "--hub",
        hub_root,
        "--id",
        "team/1.0/x",
        env=environment(hub_and_data, ""),
    )
    assert "holds no metrics.json: not a finished run" in one_error_line(result)
    assert not Path(hub_root).exists()


def test_publish_to_at_the_end_of_a_run_and_refused_before_training(hub_and_data, tmp_path):
    hub_root, output = str(tmp_path / "hub"), str(tmp_path / "out")
    publishing = {"FT_PUBLISH_TO": hub_root, "FT_PUBLISH_ID": "team/1.0/auto", "FT_PUBLISH_REQUIRE": "top1>=0.0"}
    result = job(env=environment(hub_and_data, output, **RUN, **publishing))
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"event": "published"' in result.stdout
    assert parse_descriptor(open_store(hub_root).get_bytes("mshub_res/assets/team/1.0/auto.md").decode(), "x")
    # the same id again: refused before any training, nothing written to the new output
    refused = job(env=environment(hub_and_data, str(tmp_path / "second"), **RUN, **publishing))
    assert "already has an entry team/1.0/auto" in one_error_line(refused)
    assert not (tmp_path / "second").exists() or not any((tmp_path / "second").iterdir())
    # a bar the run does not meet: the run succeeds, nothing is published, the event says why
    unmet = {**publishing, "FT_PUBLISH_ID": "team/1.0/unmet", "FT_PUBLISH_REQUIRE": "top1>=1.01"}
    skipped = job(env=environment(hub_and_data, str(tmp_path / "third"), **RUN, **unmet))
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert '"event": "publish_skipped"' in skipped.stdout
    assert not (Path(hub_root) / "mshub_res/assets/team/1.0/unmet.md").exists()
