"""What a finished run leaves in its output: metrics.json, whose summary the quality gate reads."""

from __future__ import annotations

import operator
import re

METRICS_FILE = "metrics.json"
# The numbers in metrics.json's "summary" (and in the job's last output line), the names `--require` accepts.
SUMMARY_METRICS = {
    "top1": "top-1 accuracy of the final model on the evaluation images",
    "top5": "top-5 accuracy of the final model",
    "best_top1": "the best epoch's top-1 accuracy",
    "best_epoch": "the epoch with the best top-1",
    "epochs": "epochs trained",
    "seconds": "wall time of the run",
}

# A quality bar, as `--require` and FT_PUBLISH_REQUIRE take it: METRIC>=VALUE or METRIC<=VALUE.
BAR = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*$")
COMPARE = {">=": operator.ge, "<=": operator.le}


def parse_bar(text: str) -> tuple[str, str, float]:
    """(metric, comparison, bound) of a bar; ValueError naming what is wrong."""
    match = BAR.match(text)
    if not match:
        raise ValueError(f"{text!r}: use METRIC>=VALUE or METRIC<=VALUE, e.g. top1>=0.9")
    if match.group(1) not in SUMMARY_METRICS:
        raise ValueError(
            f"{text!r}: metrics.json's summary has no {match.group(1)} (it has: {', '.join(SUMMARY_METRICS)})"
        )
    return match.group(1), match.group(2), float(match.group(3))


def unmet_bars(summary: dict, bars: list[str]) -> list[str]:
    """The bars a run's summary does not meet (a missing or empty metric does not meet its bar)."""
    unmet = []
    for bar in bars:
        metric, comparison, bound = parse_bar(bar)
        value = summary.get(metric)
        if value is None or not COMPARE[comparison](value, bound):
            unmet.append(f"{metric}={value} fails {bar.strip()}")
    return unmet
