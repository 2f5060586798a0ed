"""The job end to end through its entrypoint (`python -m job`): real MindSpore training on tiny images."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from contract.results import SUMMARY_METRICS

from conftest import HUB_ID, job_environment
from job.errors import EXIT_BAD_INPUT

pytestmark = pytest.mark.slow  # trains with MindSpore or runs a heavy tool: not in make test-fast

FAST = {
    "FT_IMAGE_SIZE": "32",
    "FT_BATCH_SIZE": "16",
    "FT_LR_MAX": "0.02",
    "FT_WARMUP_EPOCHS": "1",
    "FT_HFLIP": "false",
    "FT_CROP_MIN_SCALE": "0.6",
    "FT_LOG_EVERY": "5",
    "FT_NUM_WORKERS": "2",
}


def run_job(
    hub_root: Path, train: Path, evaluation: Path, output: Path, cache: Path, **settings: str
) -> subprocess.CompletedProcess:
    environment = job_environment(
        FT_MODEL=HUB_ID,
        FT_HUB_MIRROR=str(hub_root),
        FT_HUB_CACHE=str(cache),
        FT_TRAIN_DATA=str(train),
        FT_EVAL_DATA=str(evaluation),
        FT_OUTPUT=str(output),
        **{**FAST, **settings},
    )
    return subprocess.run(
        [sys.executable, "-m", "job"], env=environment, capture_output=True, text=True, check=False, timeout=600
    )


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, digits_data, zoo_checkpoint):
    from job.hub.publish import publish

    base = tmp_path_factory.mktemp("run")
    publish(base / "hub", HUB_ID, "googlenet", zoo_checkpoint)
    train, evaluation = digits_data
    result = run_job(base / "hub", train, evaluation, base / "out", base / "cache", FT_EPOCHS="4")
    assert result.returncode == 0, result.stderr[-3000:]
    return base, result


def test_fine_tuning_learns_and_reports(finished_run):
    base, result = finished_run
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["top1"] >= 0.8  # three classes: chance is 0.33
    assert Path(summary["metrics"]) == base / "out" / "metrics.json"
    assert set(summary) == {*SUMMARY_METRICS, "metrics"}  # the names the quality gate accepts
    events = [json.loads(line) for line in lines[:-1]]  # JSON lines when stdout is not a terminal
    kinds = [event["event"] for event in events]
    assert kinds[0] == "start" and kinds.count("epoch") == 4 and "step" in kinds
    assert events[0]["steps_per_epoch"] > 0 and events[0]["epochs"] == 4  # what the launcher's ETA needs
    metrics = json.loads((base / "out" / "metrics.json").read_text())
    assert [record["epoch"] for record in metrics["history"]] == [1, 2, 3, 4]
    for record in metrics["history"]:
        assert {"loss", "train_accuracy", "lr", "seconds", "images_per_second", "eval"} <= set(record)
        assert record["eval"]["top1"] >= 0
    final = metrics["final"]
    assert final["top1"] == summary["top1"] and final["top5"] == 1.0
    assert metrics["classes"] == ["digit-0", "digit-1", "digit-2"]
    assert sum(map(sum, final["confusion_matrix"])) == final["images"]
    assert set(final["per_class_accuracy"]) == set(metrics["classes"])


def test_artefacts_are_written_and_usable(finished_run):
    import mindspore as ms
    from mindspore import nn

    from job.hub import load_checkpoint_into
    from job.models.googlenet import googlenet

    out = finished_run[0] / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    artefacts = {label: out / key for label, key in metrics["artefacts"].items()}
    event_files = [label for label in artefacts if label.startswith("tensorboard/events.out.tfevents.")]
    assert len(event_files) == 1  # one attempt, one TensorBoard event file
    assert set(artefacts) - set(event_files) == {
        "best_checkpoint",
        "classes",
        "training_curves",
        "confusion_matrix",
        "mindir",
        "model_checkpoint",
        "model_json",
        "report",
    }
    assert json.loads(artefacts["classes"].read_text()) == ["digit-0", "digit-1", "digit-2"]
    beside = artefacts["best_checkpoint"].parent / "classes.json"  # the checkpoint is usable on its own
    assert json.loads(beside.read_text()) == ["digit-0", "digit-1", "digit-2"]
    for picture in ("training_curves", "confusion_matrix"):
        assert artefacts[picture].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # best.ckpt uses the model zoo's names: it loads into GoogleNet(num_classes=3) with its top.
    load_checkpoint_into(googlenet(num_classes=3, include_top=True), artefacts["best_checkpoint"])
    # the exported model is the best epoch's: model.ckpt holds best.ckpt's weights, model.json says which epoch
    best, exported = (
        ms.load_checkpoint(str(artefacts["best_checkpoint"])),
        ms.load_checkpoint(str(artefacts["model_checkpoint"])),
    )
    assert exported.keys() <= best.keys() and "classifier.weight" in exported  # best.ckpt adds the optimizer's state
    for name in exported:
        np.testing.assert_array_equal(best[name].asnumpy(), exported[name].asnumpy())
    description = json.loads(artefacts["model_json"].read_text())
    assert description["epoch"] == metrics["summary"]["best_epoch"] == metrics["exported"]["epoch"]
    assert description["classes"] == metrics["classes"] and description["input"]["shape"] == [-1, 3, 32, 32]
    assert "<title>Fine-tuning report" in artefacts["report"].read_text()
    manifests = sorted((out / "checkpoints" / "manifests").iterdir())
    kept = sorted({2, 3, 4, metrics["summary"]["best_epoch"]})  # FT_KEEP_CHECKPOINTS=3 newest, plus the best
    assert [path.name for path in manifests] == [f"epoch-{epoch:06d}.json" for epoch in kept]
    newest = json.loads(manifests[-1].read_text())
    state_key = next(entry["key"] for entry in newest["files"] if entry["name"] == "train_state.ckpt")
    state = ms.load_checkpoint(str(out / state_key))
    assert any(name.startswith("moments.") for name in state) and "global_step" in state  # resumable
    served = nn.GraphCell(ms.load(str(artefacts["mindir"])))
    probabilities = served(ms.Tensor(np.random.rand(2, 3, 32, 32).astype(np.float32))).asnumpy()
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_a_finished_output_is_reported_not_redone(finished_run, digits_data):
    base, first = finished_run
    before = _digests(base / "out")
    again = run_job(base / "hub", *digits_data, base / "out", base / "cache", FT_EPOCHS="4")
    assert again.returncode == 0
    assert json.loads(again.stdout.strip().splitlines()[-1]) == json.loads(first.stdout.strip().splitlines()[-1])
    other = run_job(base / "hub", *digits_data, base / "out", base / "cache", FT_EPOCHS="5")
    assert other.returncode == EXIT_BAD_INPUT
    assert other.stderr.strip().splitlines() == [other.stderr.strip()]
    assert "holds another run (FT_EPOCHS was 4, now 5)" in other.stderr
    assert _digests(base / "out") == before


def test_frozen_backbone_keeps_hub_weights(tmp_path, hub_root, digits_data, zoo_checkpoint):
    import mindspore as ms

    result = run_job(
        hub_root,
        *digits_data,
        tmp_path / "out",
        tmp_path / "cache",
        FT_EPOCHS="2",
        FT_FREEZE_BACKBONE="true",
        FT_AUGMENT="false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line)["event"] for line in result.stdout.strip().splitlines()[:-1]]
    assert events.count("features_cached") == 1  # without augmentation the head trains on cached features
    hub_weights = ms.load_checkpoint(str(zoo_checkpoint))
    artefacts = json.loads((tmp_path / "out" / "metrics.json").read_text())["artefacts"]
    assert "mindir" in artefacts  # the whole network, as always
    tuned = ms.load_checkpoint(str(tmp_path / "out" / artefacts["best_checkpoint"]))
    backbone_names = [name for name in hub_weights if not name.startswith("classifier")]
    assert len(backbone_names) == 285
    for name in backbone_names:  # weights and BatchNorm statistics alike
        np.testing.assert_array_equal(tuned[name].asnumpy(), hub_weights[name].asnumpy())
    assert not np.array_equal(tuned["classifier.weight"].asnumpy(), hub_weights["classifier.weight"].asnumpy()[:3])


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"FT_MODEL": "tests/1.0/nonexistent"}, "unknown hub model 'tests/1.0/nonexistent'"),
        ({"FT_NUM_CLASSES": "5"}, "FT_NUM_CLASSES=5 but FT_TRAIN_DATA has 3 class folders"),
        ({"FT_BATCH_SIZE": "100000"}, "fewer than FT_BATCH_SIZE=100000"),
        ({"FT_TRAIN_DATA": "/nonexistent/train"}, "FT_TRAIN_DATA=/nonexistent/train is not a directory"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, hub_root, digits_data, change, fragment):
    settings = {"FT_MODEL": HUB_ID, "FT_TRAIN_DATA": str(digits_data[0]), **change}
    environment = {**FAST, "FT_EVAL_DATA": str(digits_data[1]), **settings}
    result = subprocess.run(
        [sys.executable, "-m", "job"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=job_environment(
            FT_HUB_MIRROR=str(hub_root),
            FT_HUB_CACHE=str(tmp_path / "c"),
            FT_OUTPUT=str(tmp_path / "out"),
            **environment,
        ),
    )
    assert result.returncode == EXIT_BAD_INPUT, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert not [path for path in tmp_path.glob("out/**/*") if path.is_file()]  # nothing stored: fix and rerun


def test_check_mode_validates_without_training(tmp_path, hub_root, digits_data):
    base = {
        "FT_MODEL": HUB_ID,
        "FT_HUB_MIRROR": str(hub_root),
        "FT_HUB_CACHE": str(tmp_path / "cache"),
        "FT_TRAIN_DATA": str(digits_data[0]),
        "FT_EVAL_DATA": str(digits_data[1]),
        "FT_OUTPUT": str(tmp_path / "out"),
    }
    good = subprocess.run(
        [sys.executable, "-m", "job", "--check"],
        env=job_environment(**base),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == {
        "check": "ok",
        "model": HUB_ID,
        "model_name": "googlenet",
        "image_size": 224,  # GoogleNet's own: FT_IMAGE_SIZE is unset
        "output": str(tmp_path / "out"),
        "classes": 3,
        "train_images": sum(1 for path in digits_data[0].rglob("*.png")),
        "eval_images": sum(1 for path in digits_data[1].rglob("*.png")),
    }
    assert not list((tmp_path / "cache").rglob("*.ckpt"))  # the descriptor only: no checkpoint download
    bad = subprocess.run(
        [sys.executable, "-m", "job", "--check"],
        capture_output=True,
        text=True,
        check=False,
        env=job_environment(**{**base, "FT_MODEL": "tests/1.0/absent"}),
        timeout=120,
    )
    assert bad.returncode == EXIT_BAD_INPUT and "unknown hub model 'tests/1.0/absent'" in bad.stderr
