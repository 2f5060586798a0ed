"""Cold start of `launcher render` on an example: median wall time of several runs, against a bare Python
start measured in the same invocation, and the modules the command imports (no MindSpore among them).

    .venv/bin/python bench/launcher_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from workload import Ratio, describe, machine, write_json  # noqa: E402

EXAMPLE = ROOT / "examples" / "tutorial-googlenet-ascend.yaml"
LAUNCHER = [sys.executable, "-m", "launcher", "render", str(EXAMPLE)]
BARE = [sys.executable, "-c", "pass"]
LIST_MODULES = (
    "import sys, runpy; sys.argv = ['launcher', 'render', {example!r}]; "
    "import launcher.cli as cli; cli.main(); "
    "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)"
)


def _milliseconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args()
    host = machine()
    series: dict[str, list[float]] = {"launcher render": [], "python -c pass": []}
    for _ in range(arguments.runs):  # interleaved, so drift hits both alike
        series["launcher render"].append(_milliseconds(LAUNCHER))
        series["python -c pass"].append(_milliseconds(BARE))
    launcher, bare = (statistics.median(values) for values in series.values())
    listing = subprocess.run(
        [sys.executable, "-c", LIST_MODULES.format(example=str(EXAMPLE))], check=True, capture_output=True, text=True
    ).stderr.split()
    top_level = sorted({name.split(".")[0] for name in listing if not name.startswith("_")})
    print(f"machine: {describe(host)}; {arguments.runs} runs each")
    print(f"python -c pass:   median {bare:.0f} ms")
    print(f"launcher render:  median {launcher:.0f} ms  (target < 500 ms) {'PASS' if launcher < 500 else 'MISS'}")
    ratio = Ratio("launcher render", "python -c pass")
    print(ratio.line({"launcher render": launcher, "python -c pass": bare}))
    print(
        f"modules imported: {len(listing)} ({len(top_level)} top-level packages); mindspore among them: "
        f"{'mindspore' in top_level}"
    )
    print("top-level packages: " + ", ".join(top_level))
    write_json(
        arguments.json,
        "launcher_start",
        host,
        {"example": EXAMPLE.name},
        "ms",
        series,
        [ratio],
        extra={"target_ms": 500, "passed": launcher < 500, "imports_mindspore": "mindspore" in top_level},
    )


if __name__ == "__main__":
    main()
