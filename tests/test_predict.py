"""Batch prediction (`python -m job predict`) with a finished run's model, its checkpoint and its MINDIR, on a
local directory and on the real S3 server; the exported MINDIR served by MindSpore alone."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import environment, job_environment, metrics_of
from contract.predict import PREDICTION_SUMMARY, PREDICTIONS_CSV, PREDICTIONS_JSONL
from job.errors import EXIT_BAD_INPUT
from job.storage import open_store

pytestmark = pytest.mark.slow  # trains with MindSpore

RUN = {"FT_EPOCHS": "2", "FT_EXPORT_MINDIR": "true"}


def predict(*arguments: str, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "job", "predict", *arguments],
        env=job_environment(**variables),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.fixture(scope="module", params=["local", "s3"])
def finished(request, hub_and_data, tmp_path_factory) -> tuple[str, dict]:
    """A finished 2-epoch run (local or S3 output) with its MINDIR: (output, metrics.json)."""
    if request.param == "local":
        output = str(tmp_path_factory.mktemp("predict-run") / "out")
    else:
        output = f"s3://{request.getfixturevalue('s3_server').new_bucket()}/runs/one"
    result = subprocess.run(
        [sys.executable, "-m", "job"],
        env=environment(hub_and_data, output, **RUN),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return output, metrics_of(output)


def read_predictions(destination: str) -> tuple[dict, list[dict], list[dict]]:
    store = open_store(destination)
    summary = json.loads(store.get_bytes(PREDICTION_SUMMARY))
    records = [json.loads(line) for line in store.get_bytes(PREDICTIONS_JSONL).decode().splitlines()]
    table = list(csv.DictReader(store.get_bytes(PREDICTIONS_CSV).decode().splitlines()))
    return summary, records, table


def test_predicting_the_eval_images_gives_the_runs_accuracy(finished, hub_and_data, tmp_path):
    output, metrics = finished
    evaluation = hub_and_data[1][1]
    destination = str(tmp_path / "predictions") if not output.startswith("s3://") else output + "-predictions"
    result = predict("--run", output, "--images", str(evaluation), "--to", destination, "--top-k", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    summary, records, table = read_predictions(destination)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == summary
    exported = metrics["exported"]
    assert summary["epoch"] == exported["epoch"] == metrics["summary"]["best_epoch"]
    assert summary["predicted"] == exported["metrics"]["images"] == len(records) == len(table)
    assert summary["unreadable"] == []
    # the same images through the same transform and weights: the run's own evaluation of its exported model
    assert summary["accuracy"]["top1"] == pytest.approx(exported["metrics"]["top1"], abs=1.5 / len(records))
    assert summary["accuracy"]["per_class_accuracy"].keys() == set(metrics["classes"])
    first = records[0]
    assert first["path"].startswith(metrics["classes"][0] + "/") and first["label"] == metrics["classes"][0]
    assert len(first["top_k"]) == 2 and first["top_k"][0]["probability"] >= first["top_k"][1]["probability"]
    assert table[0]["path"] == first["path"] and table[0]["label_1"] == first["top_k"][0]["label"]
    assert float(table[0]["probability_1"]) == first["top_k"][0]["probability"]


def _mindir(output: str, metrics: dict) -> str:
    key = metrics["artefacts"]["mindir"]
    return f"{output}/{key}" if output.startswith("s3://") else str(Path(output) / key)


def test_the_mindir_predicts_what_the_checkpoint_does(finished, hub_and_data, tmp_path):
    output, metrics = finished
    images = tmp_path / "any-layout"  # no class folders: no labels, no accuracy
    for position, path in enumerate(sorted(hub_and_data[1][1].rglob("*.png"))[::7]):
        target = images / f"batch-{position % 3}" / "deeper" / f"{position}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    outcomes = []
    every_class = str(len(metrics["classes"]))
    for run in (output, _mindir(output, metrics)):
        destination = tmp_path / f"to-{len(outcomes)}"
        result = predict("--run", run, "--images", str(images), "--to", str(destination), "--top-k", every_class)
        assert result.returncode == 0, result.stderr[-3000:]
        outcomes.append(read_predictions(str(destination)))
    (checkpoint_summary, from_checkpoint, _), (mindir_summary, from_mindir, _) = outcomes
    assert checkpoint_summary["accuracy"] is None and mindir_summary["accuracy"] is None
    assert [record["path"] for record in from_checkpoint] == [record["path"] for record in from_mindir]
    assert len(from_checkpoint) == len(list(images.rglob("*.png")))
    for ours, theirs in zip(from_checkpoint, from_mindir):
        ours_by_label = {entry["label"]: entry["probability"] for entry in ours["top_k"]}
        theirs_by_label = {entry["label"]: entry["probability"] for entry in theirs["top_k"]}
        assert ours_by_label.keys() == theirs_by_label.keys() == set(metrics["classes"])
        for label, probability in ours_by_label.items():
            assert theirs_by_label[label] == pytest.approx(probability, abs=1e-4), (ours, theirs)


def test_mindspore_alone_serves_the_mindir_with_model_json(finished, hub_and_data, tmp_path):
    """Serving code that knows only MindSpore and model.json gets the job's own predictions."""
    import mindspore as ms
    from mindspore import nn
    from mindspore.dataset import vision

    output, metrics = finished
    mindir = tmp_path / "model.mindir"
    store = open_store(output)
    store.get_file(metrics["artefacts"]["mindir"], mindir)
    description = json.loads(store.get_bytes(metrics["artefacts"]["model_json"]))
    assert description["classes"] == metrics["classes"] and description["epoch"] == metrics["summary"]["best_epoch"]
    steps = description["preprocessing"]
    transform = [
        vision.Decode(),
        vision.Resize(steps["resize"]),
        vision.CenterCrop(steps["center_crop"]),
        vision.Normalize(mean=steps["mean"], std=steps["std"]),
        vision.HWC2CHW(),
    ]
    paths = sorted(hub_and_data[1][1].rglob("*.png"))[:12]
    batch = []
    for path in paths:
        image = np.fromfile(path, dtype=np.uint8)
        for step in transform:
            image = step(image)
        batch.append(image)
    served = nn.GraphCell(ms.load(str(mindir)))
    probabilities = served(ms.Tensor(np.stack(batch).astype(np.float32))).asnumpy()
    assert probabilities.shape == (len(paths), len(description["classes"]))
    destination = tmp_path / "job-predictions"
    images = tmp_path / "images"
    for path in paths:
        (images / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, images / path.parent.name / path.name)
    result = predict("--run", output, "--images", str(images), "--to", str(destination), "--top-k", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    _, records, _ = read_predictions(str(destination))
    for row, record in zip(probabilities, records):
        for entry in record["top_k"]:
            assert row[description["classes"].index(entry["label"])] == pytest.approx(entry["probability"], abs=1e-4)


def test_a_corrupt_image_among_good_ones_is_listed_not_fatal(finished, hub_and_data, tmp_path):
    output, _ = finished
    images = tmp_path / "images"
    shutil.copytree(hub_and_data[1][1], images)
    (images / "digit-1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    destination = tmp_path / "to"
    result = predict("--run", output, "--images", str(images), "--to", str(destination))
    assert result.returncode == 0, result.stderr[-3000:]
    summary, records, table = read_predictions(str(destination))
    assert [entry["path"] for entry in summary["unreadable"]] == ["digit-1/broken.png"]
    assert records[-1]["path"] == "digit-1/broken.png" and "error" in records[-1]
    assert table[-1]["path"] == "digit-1/broken.png" and table[-1]["error"]
    assert summary["predicted"] == len(records) - 1 and summary["accuracy"] is not None


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("not a finished run", "holds no metrics.json: not a finished run"),
        ("no images", "holds no .bmp/.jpeg/.jpg/.png images"),
        ("predictions already there", "already holds predictions (predictions.jsonl)"),
        ("no such option", "unrecognized arguments: --epochs"),
        ("top-k zero", "--top-k (FT_PREDICT_TOP_K): Input should be greater than or equal to 1"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(case, fragment, finished, hub_and_data, tmp_path):
    output, _ = finished
    images, destination = str(hub_and_data[1][1]), tmp_path / "to"
    arguments = {"--run": output, "--images": images, "--to": str(destination)}
    extra: list[str] = []
    if case == "not a finished run":
        (tmp_path / "unfinished").mkdir()
        arguments["--run"] = str(tmp_path / "unfinished")
    elif case == "no images":
        (tmp_path / "empty" / "sub").mkdir(parents=True)
        (tmp_path / "empty" / "notes.txt").write_text("no images here")
        arguments["--images"] = str(tmp_path / "empty")
    elif case == "predictions already there":
        destination.mkdir()
        (destination / PREDICTIONS_JSONL).write_text("kept\n")
    elif case == "no such option":
        extra = ["--epochs", "3"]
    else:
        extra = ["--top-k", "0"]
    before = {path: path.read_bytes() for path in files_under(destination)}
    result = predict(*[item for pair in arguments.items() for item in pair], *extra)
    assert result.returncode == EXIT_BAD_INPUT
    assert fragment in one_error_line(result)
    assert {path: path.read_bytes() for path in files_under(destination)} == before


def test_an_output_store_without_credentials_is_one_line(hub_and_data, s3_server):
    bucket = s3_server.new_bucket()
    variables = {
        key: value
        for key, value in job_environment().items()
        if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    variables.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
    result = subprocess.run(
        [sys.executable, "-m", "job", "predict", "--run", f"s3://{bucket}/run", "--images", str(hub_and_data[1][1])],
        env={**variables, "FT_PREDICT_TO": f"s3://{bucket}/predictions"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert "credentials" in one_error_line(result).lower()
    assert s3_server.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
