"""What the benchmarks share without importing MindSpore: a small real data set with a local hub entry, the
machine's description, ratios against targets and the JSON results that bench/run_all.py collects."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HUB_ID = "bench/1.0/googlenet"


def prepare_workload(work: Path, digits: list[int]) -> tuple[Path, Path, Path]:
    """Digits at 32x32 (train, eval roots) and a hub root holding HUB_ID, a freshly initialised GoogleNet."""
    import mindspore as ms

    from job.digits import write_digits
    from job.hub.publish import publish
    from job.models.googlenet import googlenet

    train, evaluation = write_digits(work / "data", digits)
    checkpoint = work / "googlenet.ckpt"
    ms.save_checkpoint(googlenet(num_classes=10), str(checkpoint))
    publish(work / "hub", HUB_ID, "googlenet", checkpoint)
    return train, evaluation, work / "hub"


@dataclass(frozen=True)
class JobRun:
    """One finished run of the job: when it was launched (epoch seconds, the clock of the events' `time`), wall
    seconds, the CPU seconds of its processes, its progress events and the summary it prints last."""

    launched_at: float
    wall_seconds: float
    cpu_seconds: float
    events: list[dict]
    summary: dict

    def epoch_events(self) -> list[dict]:
        """The `epoch` events after the first epoch (which includes graph compilation)."""
        return [event for event in self.events if event.get("event") == "epoch" and event["epoch"] > 1]


def run_job(environment: dict[str, str], command: list[str] | None = None) -> JobRun:
    """Run the real job (`python -m job` unless `command` is given) to success with this environment only."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched_at, started = time.time(), time.perf_counter()
    finished = subprocess.run(
        command or [sys.executable, "-m", "job"],
        env=environment,
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    printed = [found for found in map(_json_object, finished.stdout.splitlines()) if found is not None]
    return JobRun(launched_at, wall, cpu, [found for found in printed if "event" in found], printed[-1])


def _json_object(line: str) -> dict | None:
    """The JSON object on one line of the job's output; None for anything else (e.g. msrun's own lines)."""
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def machine() -> dict:
    """CPU model, cores, load average at the start, Python and MindSpore versions."""
    from importlib.metadata import version

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "mindspore": version("mindspore"),
    }


def describe(host: dict) -> str:
    return (
        f"{host['cpu']}, {host['cores']} cores, load average {host['load_average']} at start; "
        f"Python {host['python']}, MindSpore {host['mindspore']}"
    )


@dataclass(frozen=True)
class Ratio:
    """median(numerator) / median(denominator) against a target (a minimum, or a maximum with `at_most`)."""

    numerator: str
    denominator: str
    target: float | None = None
    at_most: bool = False

    def result(self, medians: dict[str, float]) -> dict:
        value = medians[self.numerator] / medians[self.denominator]
        passed = None if self.target is None else (value <= self.target if self.at_most else value >= self.target)
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "target": self.target,
            "direction": "<=" if self.at_most else ">=",
            "value": round(value, 4),
            "passed": passed,
        }

    def line(self, medians: dict[str, float]) -> str:
        outcome = self.result(medians)
        target = (
            ""
            if self.target is None
            else (f"  (target {outcome['direction']} {self.target:g}) {'PASS' if outcome['passed'] else 'MISS'}")
        )
        return f"ratio {self.numerator} / {self.denominator}: {outcome['value']:.3f}{target}"


def write_json(
    path: Path | None,
    name: str,
    host: dict,
    settings: dict,
    unit: str,
    series: dict[str, list[float]],
    ratios: list[Ratio],
    extra: dict | None = None,
) -> None:
    """The results of one benchmark, in the form bench/run_all.py collects."""
    if path is None:
        return
    medians = {key: statistics.median(values) for key, values in series.items()}
    outcomes = [ratio.result(medians) for ratio in ratios]
    document = {
        "benchmark": name,
        "machine": host,
        "settings": settings,
        "unit": unit,
        "runs": series,
        "medians": medians,
        "ratio": outcomes[0] if len(outcomes) == 1 else outcomes,
        **(extra or {}),
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
