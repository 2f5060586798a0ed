"""The live display of the job's progress (the job on a terminal, `launcher submit --follow` and `wait`):
bars and rounded lines drawn by rich on a terminal console."""

from __future__ import annotations

import io
import json

from rich.console import Console

from contract.display import LiveDisplay, event_line

EPOCH = {
    "event": "epoch",
    "time": 1764580000.123,
    "epoch": 1,
    "loss": 0.41234567891234,
    "train_accuracy": 0.8812345678,
    "lr": 2.5176505749346934e-06,
    "seconds": 6.98,
    "images_per_second": 91.69,
    "eval": {"top1": 0.9555555555555556, "top5": 1.0},
}


def _terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=120, record=True, color_system=None)


def test_epoch_results_are_rounded_not_reprs():
    assert event_line(EPOCH) == (
        "[epoch] epoch 1, loss 0.4123, train accuracy 0.8812, eval top1 0.9556, eval top5 1, 6.98 s"
    )
    assert event_line({"event": "resumed", "time": 1.0, "epoch": 3, "attempt": 2}) == "[resumed] epoch=3 attempt=2"


def test_the_display_draws_bars_from_the_jobs_events_and_lines_from_a_log():
    console = _terminal()
    display = LiveDisplay(console=console)
    display.text(json.dumps({"event": "start", "epochs": 3, "first_epoch": 1, "steps_per_epoch": 4}))
    for step in range(1, 5):
        display.event(
            {"event": "step", "epoch": 1, "step": step, "loss": 0.5123456, "accuracy": 0.875, "images_per_second": 91.1}
        )
    display.text(json.dumps(EPOCH))
    display.text("a line that is not an event")
    display.text(json.dumps({"top1": 0.9555555555555556, "top5": 1.0, "metrics": "s3://b/run/metrics.json"}))
    display.close()
    text = console.export_text()
    assert "epochs" in text and "1/3" in text  # the epoch bar after the first epoch
    assert "loss 0.5123  acc 0.875  91.1 images/s" in text  # the step bar's numbers
    assert "[epoch] epoch 1, loss 0.4123" in text and "a line that is not an event" in text
    assert "[done] top1=0.9556 top5=1 (s3://b/run/metrics.json)" in text
    assert "0.95555" not in text and "2.5176505749346934e-06" not in text
