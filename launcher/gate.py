"""The quality gate: after a Job succeeded, its metrics.json (in the output store) must meet every bar."""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass

from launcher.errors import EXIT_BELOW_BAR, LauncherError, SpecError

REQUIREMENT = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*$")
COMPARE = {">=": operator.ge, "<=": operator.le}


class BelowBar(LauncherError):
    """The job succeeded but its model does not meet the bar, or its metrics cannot be read."""

    exit_code = EXIT_BELOW_BAR


@dataclass(frozen=True)
class Requirement:
    metric: str
    comparison: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> "Requirement":
        match = REQUIREMENT.match(text)
        if not match:
            raise SpecError(f"--require {text!r}: use METRIC>=VALUE or METRIC<=VALUE, e.g. --require top1>=0.9")
        return cls(match.group(1), match.group(2), float(match.group(3)))

    def __str__(self) -> str:
        return f"{self.metric}{self.comparison}{self.bound:g}"


def read_metrics(output: str) -> dict:
    """metrics.json of a run's output location (S3 credentials from the usual AWS_* variables)."""
    from job.errors import JobError
    from job.storage import open_store

    try:
        return json.loads(open_store(output).get_bytes("metrics.json"))
    except FileNotFoundError:
        raise BelowBar(f"no metrics.json in {output}: the job did not commit results there, so its quality is "
                       f"unknown") from None
    except (JobError, ValueError) as exc:
        raise BelowBar(f"metrics.json in {output} cannot be read ({exc})") from exc


def check(output: str, requirements: list[Requirement]) -> dict:
    """The summary values checked; BelowBar names every bar that is not met."""
    summary = read_metrics(output).get("summary", {})
    missing = [str(r) for r in requirements if not isinstance(summary.get(r.metric), (int, float))]
    if missing:
        raise BelowBar(f"metrics.json in {output} has no value for {', '.join(missing)} (it has: "
                       f"{', '.join(sorted(summary))})")
    failed = [f"{r.metric} is {summary[r.metric]:g}, the bar is {r}" for r in requirements
              if not COMPARE[r.comparison](summary[r.metric], r.bound)]
    if failed:
        raise BelowBar("the job succeeded but the model is below the bar: " + "; ".join(failed))
    return {r.metric: summary[r.metric] for r in requirements}
