"""Cached backbone features (frozen backbone, no augmentation): the same training as on images with the backbone
run once, in process so that the image pipelines can be counted and caching turned off for comparison."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from conftest import HUB_ID, assert_committed, assert_same_training, environment, metrics_of
from job.checkpoints import manifest_key
from job.config import load_settings
from job.progress import Progress

pytestmark = pytest.mark.slow  # trains with MindSpore or runs a heavy tool: not in make test-fast

# A head on fixed random features needs a smaller step than fine-tuning (about 0.9 top-1 after SHORT_RUN's epochs).
FROZEN = {"FT_FREEZE_BACKBONE": "true", "FT_AUGMENT": "false", "FT_LR_MAX": "0.002"}
EPOCHS = 3  # SHORT_RUN's


@pytest.fixture(scope="module")
def hub_and_data(tmp_path_factory, digits_data) -> tuple[Path, tuple[Path, Path]]:
    """Like conftest's, with He-initialised convolutions: the frozen backbone's random features then carry enough
    of the digits for a linear head (the zoo checkpoint's small weights give features near zero)."""
    import mindspore as ms
    from mindspore.common.initializer import HeNormal, initializer

    from job.hub.publish import publish
    from job.models.googlenet import googlenet

    base = tmp_path_factory.mktemp("features-hub")
    network = googlenet(num_classes=10)
    for parameter in network.get_parameters():
        if parameter.name.endswith("conv.weight"):
            parameter.set_data(initializer(HeNormal(), parameter.shape, ms.float32))
    ms.save_checkpoint(network, str(base / "googlenet.ckpt"))
    publish(base / "hub", HUB_ID, "googlenet", base / "googlenet.ckpt")
    return base, digits_data


def _run(hub_and_data, output: Path, cache: bool = True) -> dict:
    """A frozen-backbone SHORT_RUN in this process: its metrics.json, progress events and, in order, the
    `training` flag of every image pipeline it built."""
    from job import data, features
    from job.runner import run

    built: list[bool] = []
    build_dataset = data.build_dataset
    stream = io.StringIO()

    def recording(*args, **kwargs):
        built.append(kwargs["training"])
        return build_dataset(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(data, "build_dataset", recording)
        if not cache:
            patch.setattr(features, "applies", lambda *_: False)
        run(load_settings(environment(hub_and_data, str(output), **FROZEN)), Progress(stream, as_json=True))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    return {"metrics": metrics_of(str(output)), "events": events, "built": built}


@pytest.fixture(scope="module")
def frozen_runs(hub_and_data, tmp_path_factory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("frozen")
    return {
        "cached": _run(hub_and_data, base / "cached"),
        "images": _run(hub_and_data, base / "images", cache=False),
        "base": base,
    }


def test_cached_features_train_like_images(frozen_runs):
    cached, images = frozen_runs["cached"]["metrics"], frozen_runs["images"]["metrics"]
    # The same batches in the same order (the shuffle is the dataset seed's) and the same learning rates.
    assert_same_training(cached["history"], images["history"])
    assert images["summary"]["top1"] >= 0.8  # it learned: three classes, chance is 0.33
    assert cached["summary"]["top1"] == pytest.approx(images["summary"]["top1"], abs=0.01)
    assert cached["final"]["images"] == images["final"]["images"]


def test_the_backbone_runs_once_not_per_epoch(frozen_runs, hub_and_data):
    cached, images = frozen_runs["cached"], frozen_runs["images"]
    assert images["built"].count(True) == EPOCHS  # a shuffled image pipeline per epoch
    assert cached["built"] == [False, False]  # the eval images and the training images, once, in order
    names = [event["event"] for event in cached["events"]]
    assert names.count("features_cached") == 1 and "features_cached" not in names[names.index("epoch") :]
    event = next(event for event in cached["events"] if event["event"] == "features_cached")
    train_images = len(list(hub_and_data[1][0].rglob("*.png")))
    assert (event["train_images"], event["eval_images"], event["width"]) == (
        train_images,
        cached["metrics"]["final"]["images"],
        1024,
    )
    assert "features_cached" not in [event["event"] for event in images["events"]]


def test_a_resumed_cached_run_continues_the_same_training(frozen_runs, hub_and_data):
    """An output whose epoch 1 is the last committed (what a kill before epoch 2's manifest leaves) resumes from
    it: the schedule position, the head and the optimizer state continue as in the uninterrupted run."""
    output = frozen_runs["base"] / "resumed"
    shutil.copytree(frozen_runs["base"] / "cached", output)
    for epoch in range(2, EPOCHS + 1):
        (output / manifest_key(epoch)).unlink()
    (output / "metrics.json").unlink()
    resumed = _run(hub_and_data, output)
    assert [event["epoch"] for event in resumed["events"] if event["event"] == "resumed"] == [1]
    history = assert_committed(str(output), epochs=EPOCHS, keep=0)["history"]
    uninterrupted = frozen_runs["cached"]["metrics"]
    assert_same_training(history, uninterrupted["history"])
    assert resumed["metrics"]["summary"]["top1"] == pytest.approx(uninterrupted["summary"]["top1"], abs=0.01)
