"""Start-up cost as the data grows: the job's data phase (what every start does before it builds the network)
on a first start against a resumed start on unchanged data.

    .venv/bin/python bench/startup.py [--runs 5] [--images 20000] [--size 320x240] [--s3] [--json PATH]

data phase: job.runner's image-set preparation as a pod runs it: FT_TRAIN_DATA and FT_EVAL_DATA materialized
            (read in place when local; copied to FT_DATA_CACHE when s3://, with --s3 on a SeaweedFS server on
            127.0.0.1), scanned, checked against each other and every image checked to decode, with the job's
            default data workers.
first start: an empty FT_DATA_CACHE (nothing known about the images; with --s3 every object is fetched).
resume:      the FT_DATA_CACHE that a first start left, data unchanged (what a pod restarted by Kubernetes, or a
             rerun with the same data, sees).

The images are JPEG files with smooth random content of --size pixels, 10 classes, 90% for training, written
once under --work and reused. Each run is a first start, then a resume on its cache. Prints the medians in
seconds and the ratio first start / resume (target >= 10: a resume's start-up grows with what changed, not
with the data set).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the SeaweedFS harness the tests use

from workload import Ratio, machine, write_json  # noqa: E402
from training import print_header  # noqa: E402

from job import data  # noqa: E402
from job.config import load_settings  # noqa: E402
from job.runner import _image_sets  # noqa: E402

CLASSES = 10
RATIO = Ratio("first start", "resume", 10.0)


def write_images(root: Path, count: int, size: tuple[int, int]) -> tuple[Path, Path]:
    """`count` JPEGs (train/ and eval/, one folder per class), written once: smooth random colour fields."""
    done = root / f".complete-{count}-{size[0]}x{size[1]}"
    if done.exists():
        return root / "train", root / "eval"
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        split = "eval" if (index // CLASSES) % 10 == 9 else "train"
        folder = root / split / f"class{index % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        coarse.resize(size, Image.Resampling.BICUBIC).save(folder / f"{index:06d}.jpg", quality=90)
    done.touch()
    return root / "train", root / "eval"


def data_phase_seconds(train: str, evaluation: str, cache: Path) -> float:
    settings = load_settings(
        {
            "FT_MODEL": "unused/1.0/googlenet",
            "FT_TRAIN_DATA": train,
            "FT_EVAL_DATA": evaluation,
            "FT_OUTPUT": str(cache.parent / "output"),
            "FT_DATA_CACHE": str(cache),
        }
    )
    started = time.perf_counter()
    _image_sets(settings, data.worker_count(settings.num_workers))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--size", default="320x240", help="image width x height")
    parser.add_argument("--s3", action="store_true", help="the data sets on a SeaweedFS server on 127.0.0.1")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ft-bench-startup")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as a JSON object here")
    options = parser.parse_args()
    width, height = (int(side) for side in options.size.lower().split("x"))
    train, evaluation = write_images(options.work / "images", options.images, (width, height))
    host = machine()
    settings = {
        "images": options.images,
        "size": options.size,
        "storage": "s3 (SeaweedFS, 127.0.0.1)" if options.s3 else "local directory",
        "workers": data.worker_count(0),
        "runs": options.runs,
    }
    print_header("start-up: the data phase, first start vs resume, seconds", host, settings)
    server = None
    locations = (str(train), str(evaluation))
    if options.s3:
        from s3server import SeaweedServer

        server = SeaweedServer(options.work / "seaweed")
        server.start()
        bucket = server.new_bucket()
        locations = (server.upload_tree(bucket, train, "train"), server.upload_tree(bucket, evaluation, "eval"))
        os.environ.update(server.environment)  # boto3 reads the endpoint and keys from the process environment
    try:
        series: dict[str, list[float]] = {"first start": [], "resume": []}
        for run in range(options.runs):
            cache = options.work / f"run-{run}" / "cache"
            shutil.rmtree(cache.parent, ignore_errors=True)
            series["first start"].append(data_phase_seconds(*locations, cache))
            series["resume"].append(data_phase_seconds(*locations, cache))
            print(f"run {run + 1}: " + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in series.items()))
            shutil.rmtree(cache.parent, ignore_errors=True)
    finally:
        if server is not None:
            server.stop()
    medians = {name: statistics.median(values) for name, values in series.items()}
    for name, values in series.items():
        print(f"{name:<12} median {medians[name]:8.3f} s  (runs: {', '.join(f'{v:.3f}' for v in values)})")
    print(RATIO.line(medians))
    write_json(options.json, "startup", host, settings, "seconds", series, [RATIO])


if __name__ == "__main__":
    main()
