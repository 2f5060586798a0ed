"""The job's progress events drawn on a terminal (rich): epoch k of n, a step bar, loss, accuracy, images/s and
an ETA, and one rounded line per finished epoch. The job draws its own events with it; the launcher draws the
JSON lines it reads from a pod's log. Off a terminal nobody uses it: the JSON lines are the record."""

from __future__ import annotations

import json
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

HIDDEN = {"event", "time", "rank"}


def rounded(value: Any) -> str:
    """A number as people read it (4 significant digits), anything else as text; dicts as key=value."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return " ".join(f"{key}={rounded(item)}" for key, item in value.items())
    if isinstance(value, list) and len(value) > 8:
        return f"[{len(value)} values]"
    return str(value)


def event_line(item: dict[str, Any]) -> str:
    """One event as a line of text: `[epoch] epoch=3 loss=0.4123 ...`, numbers rounded."""
    kind = item.get("event", "")
    if kind == "epoch":
        evaluation = item.get("eval") or {}
        parts = [f"epoch {item.get('epoch')}"]
        for key, label in (("loss", "loss"), ("train_accuracy", "train accuracy")):
            if item.get(key) is not None:
                parts.append(f"{label} {rounded(item[key])}")
        for key in ("top1", "top5"):
            if evaluation.get(key) is not None:
                parts.append(f"eval {key} {rounded(evaluation[key])}")
        if item.get("seconds") is not None:
            parts.append(f"{rounded(item['seconds'])} s")
        return "[epoch] " + ", ".join(parts)
    fields = " ".join(f"{key}={rounded(value)}" for key, value in item.items() if key not in HIDDEN)
    return f"[{kind}] {fields}".rstrip()


class LiveDisplay:
    """A progress display fed with the job's events (dicts as in its JSON lines) and plain lines."""

    def __init__(self, stream: TextIO | None = None, console: Console | None = None) -> None:
        self.console = console or Console(file=stream, highlight=False)
        self.bars = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[numbers]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.epochs: Any = None
        self.steps: Any = None
        self.steps_per_epoch = 0
        self.started = False

    def _start(self) -> None:
        if not self.started:
            self.bars.start()
            self.started = True

    def line(self, text: str) -> None:
        """A line that is not an event (a warning, an error, another program's output)."""
        self.console.print(text, markup=False, highlight=False)

    def text(self, text: str) -> None:
        """A line of a pod's log: an event if it is one of the job's JSON lines, else printed as it is."""
        try:
            item = json.loads(text)
        except ValueError:
            item = None
        if isinstance(item, dict) and "event" in item:
            self.event(item)
        elif isinstance(item, dict) and "top1" in item:
            self.line(
                "[done] " + rounded({k: v for k, v in item.items() if k != "metrics"}) + f" ({item.get('metrics')})"
            )
        else:
            self.line(text)

    def event(self, item: dict[str, Any]) -> None:
        kind = item.get("event")
        if kind == "start":
            self._on_start(item)
        elif kind == "step" and self.steps is not None:
            done = int(item.get("step", 0))
            within = (done - 1) % self.steps_per_epoch + 1 if self.steps_per_epoch else done
            numbers = (
                f"loss {rounded(item.get('loss'))}  acc {rounded(item.get('accuracy'))}  "
                f"{rounded(item.get('images_per_second'))} images/s"
            )
            self.bars.update(
                self.steps,
                completed=within,
                description=f"epoch {item.get('epoch')} steps",
                numbers=numbers,
                refresh=True,
            )
            return
        elif kind == "epoch" and self.epochs is not None:
            self.bars.update(self.epochs, completed=int(item.get("epoch", 0)))
            if self.steps is not None:
                self.bars.reset(
                    self.steps,
                    total=self.steps_per_epoch or None,
                    description=f"epoch {int(item.get('epoch', 0)) + 1} steps",
                    numbers="",
                )
        self.line(event_line(item))

    def _on_start(self, item: dict[str, Any]) -> None:
        self._start()
        total = int(item.get("epochs") or 0) or None
        first = int(item.get("first_epoch") or 1)
        self.steps_per_epoch = int(item.get("steps_per_epoch") or 0)
        if self.epochs is None:
            self.epochs = self.bars.add_task("epochs", total=total, completed=first - 1, numbers="")
            self.steps = self.bars.add_task("steps", total=self.steps_per_epoch or None, numbers="")
        else:
            self.bars.update(self.epochs, total=total, completed=first - 1)
            self.bars.reset(self.steps, total=self.steps_per_epoch or None, numbers="")

    def close(self) -> None:
        if self.started:
            self.bars.stop()
            self.started = False
