"""What `launcher sweep` adds to its trials: the scheduling gap on this machine and the Kubernetes API requests
per trial in a cluster.

    .venv/bin/python bench/sweep.py [--runs 3] [--trials 3] [--json PATH]

local: a `launcher sweep --local` of `--trials` tiny trials (GoogleNet fine-tuned for 1 epoch on digits 0-2 at
       32x32, a grid over lr_max), run in this process; for every trial after the first, the seconds from the
       previous trial's job ending (run_local returning) to this trial's job reporting its `start` event, and the
       launcher's own share of it (run_local returning to run_local being called again). Baseline, measured in
       the same run: `launcher run --local` of the same spec, from its launch to the job's `start` event (the
       start-up every trial pays anyway). Ratio sweep gap / run --local start-up.
api:   a cluster sweep of `--trials` trials, 2 at once, against the Kubernetes wire-format server of the tests
       (tests/fakekube.py, the Jobs finished after 1 s by its JobRunner); requests per trial. Baseline:
       `launcher submit --wait` of one job against the same server. Ratio sweep per trial / submit --wait.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the Kubernetes wire-format server of the tests

from fakekube import SPEC, FakeKube, JobRunner  # noqa: E402
from workload import HUB_ID, Ratio, describe, machine, prepare_workload, write_json  # noqa: E402

from launcher import sweep_run  # noqa: E402
from launcher.cli import main as launch  # noqa: E402

RATIOS = [Ratio("sweep gap", "run --local start-up"), Ratio("sweep requests/trial", "submit --wait requests")]
JOB_SECONDS = 1.0  # how long each Job of the api part runs


class Lines(io.TextIOBase):
    """stdout of the launcher: the `start` event time of each trial's job, by trial index."""

    def __init__(self) -> None:
        self.trial = 0
        self.starts: dict[int, float] = {}

    def write(self, text: str) -> int:
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                found = json.loads(line)
                if isinstance(found, dict) and found.get("event") == "start":
                    self.starts.setdefault(self.trial, found["time"])
        return len(text)


def local_sweep(spec: Path, work: Path, run: int, trials: int) -> tuple[list[float], list[float]]:
    """One local sweep: the gaps between trials (job end to next job start) and the launcher's share of each."""
    lines = Lines()
    calls: list[list[float]] = []  # [called, returned] of each run_local
    real = sweep_run.run_local

    def timed(*arguments, **keywords) -> int:
        lines.trial = len(calls)
        calls.append([time.time(), 0.0])
        code = real(*arguments, **keywords)
        calls[-1][1] = time.time()
        return code

    grid = ",".join(f"0.0{n + 1}" for n in range(trials))
    command = ["sweep", str(spec), "--grid", f"lr_max={grid}", "--local", "--output", "json", "--name", f"r{run}"]
    sweep_run.run_local = timed
    try:
        with contextlib.redirect_stdout(lines), contextlib.redirect_stderr(io.StringIO()):
            code = launch([*command, "--set", f"output={work / f'sweep-{run}'}", "--to", str(work / "board")])
    finally:
        sweep_run.run_local = real
    assert code == 0 and len(calls) == trials, f"the sweep exited with {code}"
    gaps = [lines.starts[index] - calls[index - 1][1] for index in range(1, trials)]
    own = [calls[index][0] - calls[index - 1][1] for index in range(1, trials)]
    return gaps, own


def run_start(spec: Path, work: Path, run: int) -> float:
    """`launcher run --local` of the spec: seconds from its launch to the job's `start` event."""
    output = work / f"single-{run}"
    launched = time.time()
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "launcher",
            "run",
            "--local",
            str(spec),
            "--set",
            f"output={output}",
            "--output",
            "json",
        ],
        cwd=work,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    start = next(json.loads(line) for line in printed.splitlines() if '"event": "start"' in line)
    return start["time"] - launched


def api_requests(work: Path, trials: int | None) -> int:
    """Requests a cluster sweep of `trials` (or, with None, `submit --wait` of one job) makes."""
    fake = FakeKube().start()
    fake.select_jobs_by_label = True
    spec = work / "cluster.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "output": str(work / "cluster-out")}))
    os.environ["KUBECONFIG"] = str(fake.kubeconfig(work / "kubeconfig"))
    grid = ",".join(f"0.0{n + 1}" for n in range(trials or 0))
    command = ["sweep", str(spec), "--grid", f"lr_max={grid}", "--parallel", "2", "--to", str(work / "board")]
    try:
        with JobRunner(fake, JOB_SECONDS), contextlib.redirect_stdout(io.StringIO()):
            with contextlib.redirect_stderr(io.StringIO()):
                code = launch(command if trials else ["submit", str(spec), "--wait"])
        assert code == 0, f"exit {code}"
        return len(fake.requests)
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=3, help="trials per sweep (at least 2)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args()
    host = machine()
    series: dict[str, list[float]] = {
        "sweep gap": [],
        "launcher between trials": [],
        "run --local start-up": [],
        "sweep requests/trial": [],
        "submit --wait requests": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as scratch:
        work = Path(scratch)
        train, evaluation, hub = prepare_workload(work, [0, 1, 2])
        spec = work / "job.yaml"
        settings = {"hub_mirror": str(hub), "epochs": 1, "image_size": 32, "batch_size": 16}
        settings.update(export_mindir=False, log_every=100, hflip=False)
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "bench",
                    "image": "finetune:1",
                    "model": HUB_ID,
                    "train_data": str(train),
                    "eval_data": str(evaluation),
                    "output": str(work / "unused"),
                    "settings": settings,
                }
            )
        )
        previous = Path.cwd()
        os.chdir(work)  # the trials' workdirs .launcher/<job> and the sweep records
        try:
            for run in range(arguments.runs):  # interleaved, so drift hits both alike
                series["run --local start-up"].append(run_start(spec, work, run))
                gaps, own = local_sweep(spec, work, run, arguments.trials)
                series["sweep gap"] += gaps
                series["launcher between trials"] += own
                series["sweep requests/trial"].append(api_requests(work, arguments.trials) / arguments.trials)
                series["submit --wait requests"].append(api_requests(work, None))
        finally:
            os.chdir(previous)
    medians = {key: statistics.median(values) for key, values in series.items()}
    print(f"machine: {describe(host)}; {arguments.runs} runs, {arguments.trials} trials per sweep")
    print(f"run --local: launch to the job's start event      median {medians['run --local start-up']:.3f} s")
    print(f"sweep --local: a trial's end to the next's start  median {medians['sweep gap']:.3f} s")
    print(
        f"  of which the launcher between run_local calls   median {medians['launcher between trials'] * 1000:.1f} ms"
    )
    print(RATIOS[0].line(medians))
    print(
        f"cluster sweep (2 at once, Jobs of {JOB_SECONDS:g} s): "
        f"median {medians['sweep requests/trial']:.1f} requests per trial"
    )
    print(f"submit --wait of one job:                     median {medians['submit --wait requests']:.0f} requests")
    print(RATIOS[1].line(medians))
    write_json(
        arguments.json,
        "sweep",
        host,
        {"trials": arguments.trials, "epochs": 1, "image_size": 32, "job_seconds": JOB_SECONDS},
        "s / requests",
        series,
        RATIOS,
    )


if __name__ == "__main__":
    main()
