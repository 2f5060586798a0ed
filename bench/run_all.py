"""Run every benchmark with its baseline and collect the results in bench/RESULTS.md.

    .venv/bin/python bench/run_all.py [--runs 5] [--only overhead,scaling]

Each benchmark prints its own report and writes a JSON object (`--json`); this script runs them one after
the other on a machine that should otherwise be idle, then writes one table (median, baseline, ratio,
target) with the machine described, followed by every benchmark's full printed report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
BENCHMARKS = {  # name -> (script, what the ratio compares)
    "overhead": ("overhead.py", "the job's training loop vs a bare Model.train with dataset sink mode"),
    "frozen": ("frozen.py", "frozen backbone with cached features vs full fine-tuning, per epoch"),
    "pipeline": ("pipeline.py", "the input pipeline alone vs what training consumes"),
    "storage": ("storage.py", "fine-tune to S3 (SeaweedFS on 127.0.0.1) vs to a local directory"),
    "scaling": ("scaling.py", "two msrun processes vs one, same global batch, same cores"),
    "launcher_start": ("launcher_start.py", "`launcher render` cold start vs bare `python -c pass`"),
}


def _run(name: str, runs: int, work: Path) -> tuple[dict, str]:
    script, _ = BENCHMARKS[name]
    path = work / f"{name}.json"
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, str(BENCH / script), "--runs", str(runs), "--json", str(path)],
                              check=True, stdout=subprocess.PIPE, text=True)
    print(finished.stdout, flush=True)
    result = json.loads(path.read_text())
    result["wall_seconds"] = round(time.perf_counter() - started)
    return result, finished.stdout


def _row(name: str, result: dict) -> str:
    comparisons = result["ratio"] if isinstance(result["ratio"], list) else [result["ratio"]]
    cells = []
    for ratio in comparisons:
        verdict = "" if ratio.get("passed") is None else (" PASS" if ratio["passed"] else " MISS")
        target = "" if ratio.get("target") is None else f"{ratio.get('direction', '>=')} {ratio['target']:g}"
        cells.append(f"{ratio['numerator']} / {ratio['denominator']} = **{ratio['value']:.3f}** "
                     f"(target {target or 'none'}){verdict}")
    medians = ", ".join(f"{key} {value:.4g}" for key, value in result["medians"].items())
    return f"| {name} | {BENCHMARKS[name][1]} | {medians} {result.get('unit', '')} | {'<br>'.join(cells)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per benchmark (medians are reported)")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    arguments = parser.parse_args()
    names = arguments.only.split(",") if arguments.only else list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]}; choose from {', '.join(BENCHMARKS)}")
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        outcomes = {name: _run(name, arguments.runs, Path(scratch)) for name in names}
    host = next(iter(outcomes.values()))[0]["machine"]
    lines = ["# Benchmark results", "",
             f"Produced by `.venv/bin/python bench/run_all.py --runs {arguments.runs}` on "
             f"{time.strftime('%Y-%m-%d')}; each benchmark measures its baseline in the same invocation and "
             f"reports medians.", "",
             f"Machine: {host['cpu']}, {host['cores']} cores; Python {host['python']}, MindSpore {host['mindspore']}.",
             "", "| benchmark | comparison | medians | ratio |", "|---|---|---|---|"]
    lines += [_row(name, result) for name, (result, _) in outcomes.items()]
    for name, (result, printed) in outcomes.items():
        lines += ["", f"## {name} ({result['wall_seconds']} s)", "", "```", printed.rstrip(), "```"]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
