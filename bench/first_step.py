"""Time to the first training step with the compiled-graph cache: cold, warm, and on a resumed pod.

    .venv/bin/python bench/first_step.py [--runs 5] [--device CPU|GPU|Ascend] [--json PATH] [--work DIR]

Each kind is a whole `python -m job` process (GoogleNet fine-tuned on the digits at 32x32, batch 32, two epochs,
FT_LOG_EVERY=1), timed from its launch to its first `step` event, then killed:

cold:           a first start with an empty FT_COMPILE_CACHE_DIR (it compiles everything, fills the cache and
                commits epoch 1 with the cache's archive before it is killed).
warm:           a first start of the same configuration (another output) on the directory cold filled.
resume carried: the cold run's output resumed by a new pod: an empty FT_COMPILE_CACHE_DIR, the graphs unpacked
                from the archive in the committed checkpoint.
resume uncached: the same resume with FT_COMPILE_CACHE=false (how every resume started before the cache).

Prints the medians and the ratios cold / warm and resume uncached / resume carried (no target: the compile time
saved is the point; on the CPU graph compilation is most of the time before the first step).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the job-process follower the tests use

from jobprocess import JobProcess, event  # noqa: E402
from workload import HUB_ID, Ratio, machine, prepare_workload, write_json  # noqa: E402
from training import print_header  # noqa: E402

RATIOS = [Ratio("cold", "warm"), Ratio("resume uncached", "resume carried")]
SETTINGS = {
    "FT_IMAGE_SIZE": "32",
    "FT_BATCH_SIZE": "32",
    "FT_EPOCHS": "2",
    "FT_LOG_EVERY": "1",
    "FT_HFLIP": "false",
    "FT_EXPORT_MINDIR": "false",
    "FT_KEEP_CHECKPOINTS": "0",
    "FT_GC_MIN_AGE_SECONDS": "0",
}


def seconds_to_first_step(environment: dict[str, str], until: str = "step") -> tuple[float, dict]:
    """Launch to the first step event; the job runs on until the `until` event, then is killed. Also returns
    the start event (its compile_cache says what the run found)."""
    job = JobProcess(environment)
    start = job.wait_for(event("start"))
    first = job.wait_for(event("step"))
    if until != "step":
        job.wait_for(event(until, epoch=1))
    job.signal()
    job.finish()
    return first["time"] - job.launched, start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="CPU", choices=["CPU", "GPU", "Ascend"])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ft-bench-first-step")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as a JSON object here")
    options = parser.parse_args()
    shutil.rmtree(options.work, ignore_errors=True)
    train, evaluation, hub = prepare_workload(options.work / "workload", list(range(10)))
    host = machine()
    settings = {**{key[3:].lower(): value for key, value in SETTINGS.items()}, "device": options.device}
    settings["runs"] = options.runs
    print_header("time to the first step, seconds from launch", host, settings)
    base = {key: value for key, value in os.environ.items() if not key.startswith("FT_")}
    base.update(SETTINGS, FT_MODEL=HUB_ID, FT_HUB_MIRROR=str(hub), FT_TRAIN_DATA=str(train))
    base.update(FT_EVAL_DATA=str(evaluation), FT_DEVICE_TARGET=options.device)
    base.update(FT_HUB_CACHE=str(options.work / "hub-cache"), FT_DATA_CACHE=str(options.work / "data-cache"))
    series: dict[str, list[float]] = {name: [] for name in ("cold", "warm", "resume carried", "resume uncached")}
    for run in range(options.runs):
        work = options.work / f"run-{run}"
        resumed = str(work / "resumed")
        found = {}
        kinds = [
            ("cold", {"FT_OUTPUT": resumed, "FT_COMPILE_CACHE_DIR": str(work / "cache")}, "committed"),
            ("warm", {"FT_OUTPUT": str(work / "other"), "FT_COMPILE_CACHE_DIR": str(work / "cache")}, "step"),
        ]
        resumes = [
            ("resume carried", {"FT_OUTPUT": resumed, "FT_COMPILE_CACHE_DIR": str(work / "new-pod")}, "step"),
            ("resume uncached", {"FT_OUTPUT": resumed, "FT_COMPILE_CACHE": "false"}, "step"),
        ]
        for name, overrides, until in kinds + (resumes if run % 2 == 0 else resumes[::-1]):
            seconds, start = seconds_to_first_step({**base, **overrides}, until)
            series[name].append(seconds)
            found[name] = start["compile_cache"]
        print(f"run {run + 1}: " + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in series.items()))
        print(f"  compile cache found: {found}", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in series.items()}
    for name, values in series.items():
        print(f"{name:<16} median {medians[name]:7.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})")
    for ratio in RATIOS:
        print(ratio.line(medians))
    write_json(options.json, "first_step", host, settings, "seconds", series, RATIOS)


if __name__ == "__main__":
    main()
