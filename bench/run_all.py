"""Run every benchmark with its baseline and collect the results in bench/RESULTS.md.

    .venv/bin/python bench/run_all.py [--runs 5] [--only overhead,scaling] [--args "zoo=--steps 3 --models resnet50"]
    .venv/bin/python bench/run_all.py --device GPU     # time_to_accuracy, overhead, first_step on a GPU (or Ascend)

Each benchmark prints its own report and writes a JSON object (`--json`); this script runs them one after
the other on a machine that should otherwise be idle, keeps their results in bench/results.json (`--only`
replaces just the named ones), then writes one table (median, baseline, ratio, target) with the machine
described, notes, and every benchmark's full printed report. zoo, jpeg_pipeline and time_to_accuracy need the
PyTorch environment first (`make bench-torch-venv`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
COLLECTED = BENCH / "results.json"  # every benchmark's latest results, rendered into RESULTS.md
BENCHMARKS = {  # name -> (script, what the ratio compares)
    "overhead": ("overhead.py", "the job's training loop vs a bare Model.train with dataset sink mode"),
    "frozen": ("frozen.py", "frozen backbone with cached features vs full fine-tuning, per epoch"),
    "pipeline": ("pipeline.py", "the input pipeline alone vs what training consumes"),
    "storage": ("storage.py", "fine-tune to S3 (SeaweedFS on 127.0.0.1) vs to a local directory"),
    "scaling": ("scaling.py", "two msrun processes vs one, same global batch, same cores"),
    "launcher_start": ("launcher_start.py", "`launcher render` cold start vs bare `python -c pass`"),
    "tracking": ("tracking.py", "training throughput with TensorBoard, and with TensorBoard + MLflow, vs untracked"),
    "sweep": (
        "sweep.py",
        "`launcher sweep`: --local gap between trials vs `run --local` start-up; API requests per trial vs submit",
    ),
    "image_build": (
        "image_build.py",
        "CPU image rebuilds (code-only change, no change) vs a build with no layer cache",
    ),
    "startup": ("startup.py", "the data phase of a start on 20,000 images: first start vs resume"),
    "first_step": ("first_step.py", "time to the first step with the compiled-graph cache: cold, warm, resumed pod"),
    "predict": (
        "predict.py",
        "`python -m job predict`'s pass vs the job's evaluation pass (first, with compilation; later ones), and "
        "the whole call, same model and images",
    ),
    "jpeg_pipeline": (  # needs .venv-torch
        "jpeg_pipeline.py",
        "224x224 training pipeline on 500x375 JPEG photos: the job's vs torchvision's, and vs training consumption",
    ),
    "time_to_accuracy": (  # needs .venv-torch
        "time_to_accuracy.py",
        "the demo's fine-tune, whole processes: the job (cold and warm compile cache) vs a plain PyTorch script",
    ),
    "zoo": (  # needs .venv-torch: make bench-torch-venv
        "zoo.py",
        "per built-in architecture: MindSpore vs PyTorch (training, inference); the job's loop vs bare Model.train",
    ),
}


ON_DEVICE = ("time_to_accuracy", "overhead", "first_step")  # they take --device GPU|Ascend


def _run(name: str, runs: int, work: Path, extra: list[str]) -> dict:
    """Run one benchmark (with `extra` arguments); its JSON results with the date, duration and printed report
    added."""
    script, _ = BENCHMARKS[name]
    path = work / f"{name}.json"
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, str(BENCH / script), "--runs", str(runs), "--json", str(path), *extra],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    print(finished.stdout, flush=True)
    result = json.loads(path.read_text())
    result.update(
        wall_seconds=round(time.perf_counter() - started),
        date=time.strftime("%Y-%m-%d"),
        runs_each=runs,
        printed=finished.stdout.rstrip(),
    )
    return result


def _row(name: str, result: dict) -> str:
    comparisons = result["ratio"] if isinstance(result["ratio"], list) else [result["ratio"]]
    cells = []
    for ratio in comparisons:
        verdict = "" if ratio.get("passed") is None else (" PASS" if ratio["passed"] else " MISS")
        target = "" if ratio.get("target") is None else f"{ratio.get('direction', '>=')} {ratio['target']:g}"
        cells.append(
            f"{ratio['numerator']} / {ratio['denominator']} = **{ratio['value']:.3f}** "
            f"(target {target or 'none'}){verdict}"
        )
    medians = ", ".join(f"{key} {value:.4g}" for key, value in result["medians"].items())
    return f"| {name} | {BENCHMARKS[name][1]} | {medians} {result.get('unit', '')} | {'<br>'.join(cells)} |"


def _render(outcomes: dict[str, dict]) -> str:
    host = next(iter(outcomes.values()))["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Produced by `.venv/bin/python bench/run_all.py` (collected in `bench/results.json`); each benchmark "
        "measures its baseline in the same invocation and reports medians.",
        "",
        f"Machine: {host['cpu']}, {host['cores']} cores; Python {host['python']}, MindSpore {host['mindspore']}.",
        "",
        "| benchmark | comparison | medians | ratio |",
        "|---|---|---|---|",
    ]
    lines += [_row(name, result) for name, result in outcomes.items()]
    notes = [f"- {name}: {result['note']}" for name, result in outcomes.items() if result.get("note")]
    lines += ["", "Notes:", "", *notes] if notes else []
    for name, result in outcomes.items():
        lines += [
            "",
            f"## {name} ({result['date']}, {result['runs_each']} runs, {result['wall_seconds']} s)",
            "",
            "```",
            result["printed"],
            "```",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per benchmark (medians are reported)")
    parser.add_argument(
        "--only",
        help="comma-separated subset of: " + ", ".join(BENCHMARKS) + "; the others keep their collected results",
    )
    parser.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="more arguments for one benchmark, e.g. 'zoo=--steps 3 --models resnet50' (repeatable)",
    )
    parser.add_argument(
        "--device",
        choices=["GPU", "Ascend"],
        help=f"run the benchmarks that train on a device ({', '.join(ON_DEVICE)}) there, with --device, and keep "
        "their results in results-<device>.json and RESULTS-<device>.md",
    )
    arguments = parser.parse_args()
    names = arguments.only.split(",") if arguments.only else list(ON_DEVICE if arguments.device else BENCHMARKS)
    extra = {name: shlex.split(value) for name, _, value in (item.partition("=") for item in arguments.args)}
    unknown = sorted((set(names) | set(extra)) - set(ON_DEVICE if arguments.device else BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]}; choose from {', '.join(BENCHMARKS)}")
    collected_path, results_path = COLLECTED, RESULTS
    if arguments.device:
        for name in names:
            extra[name] = [*extra.get(name, []), "--device", arguments.device]
        collected_path = BENCH / f"results-{arguments.device}.json"
        results_path = BENCH / f"RESULTS-{arguments.device}.md"
    collected = json.loads(collected_path.read_text()) if arguments.only and collected_path.exists() else {}
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        for name in names:
            collected[name] = _run(name, arguments.runs, Path(scratch), extra.get(name, []))
            collected_path.write_text(json.dumps(collected, indent=2) + "\n", encoding="utf-8")  # kept if one fails
    ordered = {name: collected[name] for name in BENCHMARKS if name in collected}
    results_path.write_text(_render(ordered), encoding="utf-8")
    print(f"wrote {results_path}")


if __name__ == "__main__":
    main()
