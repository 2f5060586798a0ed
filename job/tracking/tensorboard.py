"""TensorBoard event files of a run, written with tensorboardX from the job's progress events.

The events are written synchronously (tensorboardX's event file writer and summary builders, without its
queueing SummaryWriter), so the copy committed with each epoch holds every event up to that epoch.

Every scalar is on one step axis, the optimizer's global step (an epoch's values at its last step), so a resumed
attempt can hide what a killed one wrote past the last committed epoch: its file starts with a purge step, and
TensorBoard drops the earlier files' events from that step on.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

WINDOW_SCALARS = {
    "loss": "train/loss",
    "accuracy": "train/accuracy",
    "lr": "train/lr",
    "images_per_second": "train/images_per_second",
}
EPOCH_SCALARS = {
    "loss": "epoch/loss",
    "train_accuracy": "epoch/train_accuracy",
    "lr": "epoch/lr",
    "images_per_second": "epoch/images_per_second",
}
EVAL_SCALARS = {"top1": "eval/top1", "top5": "eval/top5", "loss": "eval/loss"}
CONFUSION_TAG = "eval/confusion_matrix"
EVENT_FILE_PREFIX = "events.out.tfevents."
EVENT_DIR = "tensorboard"  # in the scratch directory, in each commit and in the results


class EventLog:
    """One attempt's event file in `directory`, next to the files earlier attempts left there."""

    def __init__(self, directory: Path, steps_per_epoch: int, epochs_done: int, attempt: str) -> None:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.steps_per_epoch = steps_per_epoch
        self.last_step = epochs_done * steps_per_epoch
        self._event = Event
        # the attempt in the file's name: never the file of another attempt
        self._file = EventsWriter(str(directory / "events"), f".{attempt}")
        if epochs_done:  # hide what a killed attempt wrote past the epoch this one resumes from
            purge = self.last_step + 1
            self._file.write_event(Event(step=purge, file_version="brain.Event:2"))
            self._file.write_event(Event(step=purge, session_log=SessionLog(status=SessionLog.START)))

    def _add(self, summary, step: int) -> None:
        self._file.write_event(self._event(wall_time=time.time(), step=step, summary=summary))
        self.last_step = max(self.last_step, step)

    def _scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboardX.summary import scalar

        self._add(scalar(tag, float(value)), step)

    def record(self, item: dict) -> None:
        """Scalars of a `step` (progress window) or `epoch` event; other events are not charted."""
        kind = item.get("event")
        if kind == "step":
            step = int(item["step"])
            for field, tag in WINDOW_SCALARS.items():
                self._scalar(tag, item[field], step)
        elif kind == "epoch":
            step = int(item["epoch"]) * self.steps_per_epoch
            for field, tag in EPOCH_SCALARS.items():
                self._scalar(tag, item[field], step)
            for field, tag in EVAL_SCALARS.items():
                if (item.get("eval") or {}).get(field) is not None:
                    self._scalar(tag, item["eval"][field], step)

    def image(self, png: Path, tag: str = CONFUSION_TAG) -> None:
        """A picture of the run (the confusion matrix) at the last step written."""
        from PIL import Image

        with Image.open(png) as picture:
            pixels = np.asarray(picture.convert("RGB"))
        from tensorboardX.summary import image

        self._add(image(tag, pixels, dataformats="HWC"), self.last_step)

    def copy_to(self, folder: Path) -> dict[str, Path]:
        """Every event file of the directory, flushed and copied into `folder` (for a commit or the results):
        name (`tensorboard/<file>`) -> copy."""
        self._file.flush()
        copies = {}
        for path in sorted(self.directory.glob(EVENT_FILE_PREFIX + "*")):
            target = folder / EVENT_DIR / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copies[f"{EVENT_DIR}/{path.name}"] = target
        return copies

    def close(self) -> None:
        self._file.close()


def restore_event_files(files: dict[str, Path], directory: Path) -> int:
    """Move the event files a restored checkpoint carries (`tensorboard/<file>` names) into `directory`; their
    count."""
    directory.mkdir(parents=True, exist_ok=True)
    moved = 0
    for name, path in files.items():
        if name.startswith(f"{EVENT_DIR}/") and path.name.startswith(EVENT_FILE_PREFIX):
            shutil.move(path, directory / path.name)
            moved += 1
    return moved
