"""TensorBoard event files of a run killed in the middle of an epoch and resumed, read back with the
`tensorboard` package's own event reader: one step axis without repeats, the epochs' values as in
metrics.json, the confusion matrix as an image, and the files committed with the results."""

from __future__ import annotations

import signal

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import environment, metrics_of
from jobprocess import JobProcess, event
from job.storage import open_store

pytestmark = pytest.mark.slow  # trains with MindSpore


def _events_of(output: str, target) -> EventAccumulator:
    """The run's committed event files, downloaded from its output into `target`, loaded."""
    store = open_store(output)
    metrics = metrics_of(output)
    keys = [key for label, key in metrics["artefacts"].items() if label.startswith("tensorboard/")]
    for key in keys:
        store.get_file(key, target / key.rsplit("/", 1)[-1])
    accumulator = EventAccumulator(str(target), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_a_resumed_run_has_one_unbroken_record(hub_and_data, output_location, tmp_path):
    settings = environment(hub_and_data, output_location)
    first = JobProcess(settings)
    first.wait_for(event("committed", epoch=2))
    first.wait_for(event("step", epoch=3))  # a window of epoch 3 is in the killed attempt's file
    first.signal(signal.SIGKILL)
    first.finish()
    second = JobProcess(settings)
    assert second.finish() == 0, second.stderr[-2000:]

    metrics = metrics_of(output_location)
    history = metrics["history"]
    events = _events_of(output_location, tmp_path / "tensorboard")
    windows = events.Scalars("train/loss")
    steps = [item.step for item in windows]
    assert steps == sorted(set(steps)), "a step charted twice: the killed attempt's epoch 3 was not purged"
    resumed_windows = [line for line in second.events("step")]
    assert {item["step"] for item in resumed_windows} <= set(steps)  # the resumed attempt's windows are there
    assert len(events.Scalars("train/lr")) == len(windows)

    steps_per_epoch = second.events("start")[0]["steps_per_epoch"]
    epoch_loss = events.Scalars("epoch/loss")
    assert [item.step for item in epoch_loss] == [r["epoch"] * steps_per_epoch for r in history]
    assert [item.value for item in epoch_loss] == pytest.approx([r["loss"] for r in history], rel=1e-6)
    assert [item.value for item in events.Scalars("eval/top1")] == pytest.approx([r["eval"]["top1"] for r in history])
    assert [item.value for item in events.Scalars("eval/loss")] == pytest.approx([r["eval"]["loss"] for r in history])
    (image,) = events.Images("eval/confusion_matrix")
    assert image.width > 100 and image.height > 100 and image.encoded_image_string.startswith(b"\x89PNG")
    # two attempts, two files, both committed with the results
    assert len([label for label in metrics["artefacts"] if label.startswith("tensorboard/")]) == 2
