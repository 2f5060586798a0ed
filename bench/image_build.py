"""Build times of the CPU image: cold (no layer cache and no pip download cache: every layer built again, every
wheel downloaded again), warm (nothing changed) and after a code-only change (one file of job/ edited), medians
of several runs each, with the ratios against the cold build measured in the same run, and the image's size.

    .venv/bin/python bench/image_build.py [--runs 3] [--base-image NAME]

The builds use a copy of the build context (the tracked files), so the working tree is never edited. The
base image is the public one when it is present or can be pulled, else the local stand-in (built if needed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from image.build import PUBLIC_BASE, ensure_base  # noqa: E402
from launcher.engine import Engine, find_engine  # noqa: E402
from workload import Ratio, describe, machine, write_json  # noqa: E402

TAG = "localhost/finetune-bench:cpu"
CODE_TARGET = 15.0  # seconds: a code-only change must rebuild in seconds


def _context(work: Path) -> Path:
    """The tracked files of the repository, copied: the build context a clean clone would have."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True).stdout
    context = work / "context"
    for name in filter(None, listed.decode().split("\0")):
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return context


def _build(engine: Engine, context: Path, base: str, *flags: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            engine.command,
            "build",
            "--network",
            "host",
            "--build-arg",
            "DEVICE=cpu",
            "-t",
            TAG,
            *flags,
            "--build-arg",
            f"BASE_IMAGE={base}",
            str(context),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base-image", default=PUBLIC_BASE)
    parser.add_argument("--pip-ca", default=None, help="extra CA bundle for pip in the build (default: $PIP_CERT)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args()
    engine = find_engine()
    host = machine()
    pip_ca = arguments.pip_ca or os.environ.get("PIP_CERT")
    secret = ["--secret", f"id=pip-ca,src={pip_ca}"] if pip_ca else []
    with tempfile.TemporaryDirectory(prefix="bench-image-") as work:
        base = ensure_base(engine, arguments.base_image, "auto", Path(work) / "base.log")
        context = _context(Path(work))
        cold_flags = [
            "--no-cache",
            "--build-arg",
            "PIP_NO_CACHE_DIR=1",
            *(["--layers=false"] if engine.is_podman else []),
        ]
        series: dict[str, list[float]] = {"cold": [], "warm": [], "code change": []}
        _build(engine, context, base, *secret)  # fills the layer cache the warm and code-change builds use
        for run in range(arguments.runs):
            series["cold"].append(_build(engine, context, base, *secret, *cold_flags))
            _build(engine, context, base, *secret)  # back to the cached layers
            series["warm"].append(_build(engine, context, base, *secret))
            with (context / "job" / "__init__.py").open("a") as code:
                code.write(f"# edit {run} {time.time()}\n")
            series["code change"].append(_build(engine, context, base, *secret))
        size = engine.image_size(TAG)
        engine.run("rmi", TAG)
    medians = {name: statistics.median(values) for name, values in series.items()}
    print(f"machine: {describe(host)}; engine {engine.name}; base {base}; {arguments.runs} runs each")
    for name, values in series.items():
        print(f"{name + ':':<13} median {medians[name]:7.1f} s   runs {', '.join(f'{value:.1f}' for value in values)}")
    passed = medians["code change"] <= CODE_TARGET
    print(
        f"code change rebuild: {medians['code change']:.1f} s (target <= {CODE_TARGET:g} s) "
        f"{'PASS' if passed else 'MISS'}"
    )
    ratios = [Ratio("code change", "cold"), Ratio("warm", "cold")]
    for ratio in ratios:
        print(ratio.line(medians))
    print(f"image size: {size / 1e9:.2f} GB")
    write_json(
        arguments.json,
        "image_build",
        host,
        {"base": base, "engine": engine.name},
        "s",
        series,
        ratios,
        extra={"image_bytes": size, "code_target_seconds": CODE_TARGET, "passed": passed},
    )


if __name__ == "__main__":
    main()
