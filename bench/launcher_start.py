"""Cold start of `launcher render` on an example: median wall time of several runs, against a bare Python
start measured in the same invocation, and the modules the command imports (no MindSpore among them).

    .venv/bin/python bench/launcher_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tutorial-googlenet-ascend.yaml"
LAUNCHER = [sys.executable, "-m", "launcher", "render", str(EXAMPLE)]
BARE = [sys.executable, "-c", "pass"]
LIST_MODULES = ("import sys, runpy; sys.argv = ['launcher', 'render', {example!r}]; "
                "import launcher.cli as cli; cli.main(); "
                "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)")


def _median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    arguments = parser.parse_args()
    bare = _median_seconds(BARE, arguments.runs)
    launcher = _median_seconds(LAUNCHER, arguments.runs)
    listing = subprocess.run([sys.executable, "-c", LIST_MODULES.format(example=str(EXAMPLE))], check=True,
                             capture_output=True, text=True).stderr.split()
    top_level = sorted({name.split(".")[0] for name in listing if not name.startswith("_")})
    print(f"machine: {os.cpu_count()} cores; {arguments.runs} runs each")
    print(f"python -c pass:   median {bare * 1000:.0f} ms")
    print(f"launcher render:  median {launcher * 1000:.0f} ms  (target < 500 ms; ratio to bare Python "
          f"{launcher / bare:.1f})")
    print(f"modules imported: {len(listing)} ({len(top_level)} top-level packages); mindspore among them: "
          f"{'mindspore' in top_level}")
    print("top-level packages: " + ", ".join(top_level))


if __name__ == "__main__":
    main()
