"""Input pipeline on realistic JPEGs: images/s of the job's training pipeline against torchvision's usual one on
the same photographs, and against what the job's training takes at 224x224.

    .venv/bin/python bench/jpeg_pipeline.py [--runs 5] [--images 2000] [--steps 4] [--work DIR] [--json PATH]

It needs the PyTorch environment: `make bench-torch-venv` (.venv-torch).

workload:    --images JPEGs (default 2,000) of 500x375 pixels, quality 90, in 10 class folders (ImageFolder
             layout), derived from the real photographs that installed packages ship: scikit-learn's sample
             images (sklearn.datasets.load_sample_images(): china.jpg, flower.jpg, 640x427) and matplotlib's
             sample_data/grace_hopper.jpg (matplotlib.cbook.get_sample_data, 512x600); each one a random crop of
             one of them (random position, 30-100% of the largest crop of its aspect, aspect 4:3 +-10%), flipped
             half the time, brightness, contrast and saturation changed by up to 15%, resized to 500x375. Written
             once under --work and reused by later runs.
job:         job.data.build_dataset(training=True) as the runner calls it with the job's defaults (224x224,
             batch 32, RandomCropDecodeResize scale (0.08, 1), flip, Normalize, HWC2CHW, num_workers W =
             job.data.worker_count(0), the usable CPUs), built per epoch as the runner does and iterated as the
             trainer iterates it (create_tuple_iterator(num_epochs=1)), one full epoch per run.
torchvision: torchvision.datasets.ImageFolder with RandomResizedCrop(224, scale=(0.08, 1)), RandomHorizontalFlip,
             ToTensor, Normalize (ImageNet mean and std), DataLoader(batch_size=32, shuffle=True, num_workers=W,
             drop_last=True, persistent_workers=False), one full pass per run; PIL decoding, the default loader
             (the settings line says whether pillow-simd or accimage are installed); in .venv-torch's interpreter
             (bench/torch_pipeline.py, one request at a time, never at the same time as the others).
training:    job.train.Trainer.train_epoch of GoogleNet (the job's fine-tune network) at 224x224, batch 32, on the
             job's pipeline over these JPEGs, epochs cut to --steps batches (default 4), pipeline built per epoch;
             the share of its time spent waiting for a batch is printed too.

Each measure first runs once untimed (GoogleNet's graph compilation, the first pipeline starts), then --runs runs
of the three are interleaved (alternating the order). Prints medians of images/s, images/s per core (divided by W)
and CPU milliseconds per image (every thread and process of the side: this process for the job, the PyTorch
process and its DataLoader workers for torchvision), the ratios job / torchvision (target >= 1) and job /
training (target >= 2: the pipeline keeps the training step fed), and torchvision's CPU per image over the job's.
Other work on the machine moves images/s (and favours the side with more threads: MindSpore's pipeline runs more
than torchvision's W worker processes), CPU per image much less: run it on an otherwise idle machine.
JSON (--json): the runs, medians and ratios, per-core medians, CPU ms per image, warm-up seconds and the
training's wait shares.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline import WaitRecording
from training import UNUSED_LOCATIONS, JobTraining, Setup, interleaved, print_header, training_set, warm_up
from peer import PeerProcess
from workload import Ratio, machine, write_json

import numpy as np
from PIL import Image, ImageEnhance

from job import data
from job.config import load_settings
from job.device import configure

BENCH = Path(__file__).resolve().parent
TORCH_PYTHON = BENCH.parent / ".venv-torch" / "bin" / "python"
PHOTO_SIZE = (500, 375)
QUALITY = 90
CLASSES = 10
IMAGE_SIZE = 224
BATCH_SIZE = 32
MODEL = "googlenet"
RATIOS = [Ratio("job", "torchvision", 1.0), Ratio("job", "training", 2.0)]


def source_photos() -> dict[str, Image.Image]:
    """The real photographs installed packages ship, by file name."""
    from matplotlib import cbook
    from sklearn.datasets import load_sample_images

    paths = [
        *map(Path, load_sample_images().filenames),
        Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
    ]
    return {path.name: Image.open(path).convert("RGB") for path in paths}


def variant(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop of `photo` (position, scale, aspect near PHOTO_SIZE's), maybe flipped, with mild colour
    changes, at PHOTO_SIZE."""
    width, height = photo.size
    aspect = PHOTO_SIZE[0] / PHOTO_SIZE[1] * rng.uniform(0.9, 1.1)
    crop_width = min(width, height * aspect) * math.sqrt(rng.uniform(0.3, 1.0))
    crop_height = crop_width / aspect
    left, top = rng.uniform(0, width - crop_width), rng.uniform(0, height - crop_height)
    box = (left, top, left + crop_width, top + crop_height)
    image = photo.resize(PHOTO_SIZE, Image.Resampling.BICUBIC, box=box)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(rng.uniform(0.85, 1.15))
    return image


def photo_folder(work: Path, images: int) -> Path:
    """`images` JPEGs derived from the source photographs in CLASSES class folders under `work`: written on the
    first call, reused after (a manifest written last marks a complete set)."""
    root = work / f"jpeg-{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}-q{QUALITY}-{images}"
    manifest = root / "manifest.json"
    if manifest.exists():
        return root / "train"
    started = time.perf_counter()
    photos = source_photos()
    names = sorted(photos)
    rng = np.random.default_rng(0)
    for folder in range(CLASSES):
        (root / "train" / f"class-{folder:02d}").mkdir(parents=True, exist_ok=True)
    for index in range(images):
        image = variant(photos[names[rng.integers(len(names))]], rng)
        image.save(root / "train" / f"class-{index % CLASSES:02d}" / f"{index:05d}.jpg", quality=QUALITY)
    seconds = time.perf_counter() - started
    description = {"images": images, "size": PHOTO_SIZE, "quality": QUALITY, "sources": names}
    manifest.write_text(json.dumps(description) + "\n", encoding="utf-8")
    print(f"wrote {images} JPEGs to {root} in {seconds:.1f} s", flush=True)
    return root / "train"


def folder_bytes(folder: data.ImageFolder) -> int:
    return sum(path.stat().st_size for paths in folder.files.values() for path in paths)


def job_setup(train_root: Path, epochs: int, steps: int) -> Setup:
    """The job's default settings at IMAGE_SIZE and BATCH_SIZE for these photos, MindSpore configured as the job
    configures it; epochs of at most `steps` batches (for training; the pipeline measure takes whole epochs)."""
    settings = load_settings(
        {
            **UNUSED_LOCATIONS,
            "FT_IMAGE_SIZE": str(IMAGE_SIZE),
            "FT_BATCH_SIZE": str(BATCH_SIZE),
            "FT_EPOCHS": str(epochs),
        }
    )
    configure(settings, device_id=0)
    return Setup(settings, data.scan_image_folder(train_root, "FT_TRAIN_DATA"), MODEL, steps)


def own_cpu_seconds() -> float:
    """CPU seconds of this process, all its threads (MindSpore's pipeline and op threads) included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def torch_pipeline(python: Path) -> PeerProcess:
    """bench/torch_pipeline.py in .venv-torch's interpreter."""
    environment = dict(os.environ)
    environment.pop("ONEDNN_MAX_CPU_ISA", None)  # job.device.prepare_process's cap is MindSpore's
    return PeerProcess([str(python), str(BENCH / "torch_pipeline.py")], environment, "PyTorch side")


def torchvision_note(about: dict) -> str:
    """The PyTorch side's versions and image decoding in one line."""
    fast = [name.replace("_", "-") for name in ("pillow_simd", "accimage") if about[name]]
    jpeg = f"libjpeg-turbo {about['libjpeg_turbo']}" if about["libjpeg_turbo"] else f"libjpeg {about['libjpeg']}"
    return (
        f"torch {about['torch']}, torchvision {about['torchvision']}, image backend {about['image_backend']}, "
        f"Pillow {about['pillow']} ({jpeg}); "
        + (f"{' and '.join(fast)} installed" if fast else "pillow-simd and accimage not installed")
    )


class Measures:
    """The three measures; each also records the CPU milliseconds it spent per image (all the threads and
    processes of its side), which other load on the machine moves far less than images/s."""

    def __init__(self, epoch: Setup, peer: PeerProcess, training: WaitRecording) -> None:
        self.epoch, self.peer, self.training = epoch, peer, training
        self.cpu_ms: dict[str, list[float]] = {name: [] for name in ("job", "torchvision", "training")}

    def _record(self, name: str, cpu_seconds: float, images: int) -> None:
        self.cpu_ms[name].append(1000 * cpu_seconds / images)

    def job(self) -> float:
        """One epoch of a freshly built training pipeline, iterated as the trainer does, batches unused."""
        started, cpu = time.perf_counter(), own_cpu_seconds()
        images = 0
        for _, labels in training_set(self.epoch).create_tuple_iterator(num_epochs=1):
            images += labels.shape[0]
        self._record("job", own_cpu_seconds() - cpu, images)
        return images / (time.perf_counter() - started)

    def torchvision(self) -> float:
        answer = self.peer.call("epoch")
        self._record("torchvision", answer["cpu_seconds"], answer["images"])
        return answer["images_per_second"]

    def train(self) -> float:
        cpu = own_cpu_seconds()
        rate = self.training.images_per_second(1)
        self._record("training", own_cpu_seconds() - cpu, self.training.training.bench.images_per_epoch)
        return rate

    def all(self) -> dict[str, Callable[[], float]]:
        return {"job": self.job, "torchvision": self.torchvision, "training": self.train}

    def forget(self) -> None:
        """Drop what the warm-up recorded."""
        for runs in self.cpu_ms.values():
            runs.clear()
        self.training.wait_shares.clear()


def print_results(series: dict[str, list[float]], workers: int, measures: Measures) -> dict[str, float]:
    """The medians in images/s, per core and in CPU ms per image, the training's wait for batches and the
    ratios; the medians."""
    medians = {key: statistics.median(values) for key, values in series.items()}
    for key, values in series.items():
        print(
            f"{key:<12} median {medians[key]:8.1f} images/s, {medians[key] / workers:7.1f} per core, "
            f"{statistics.median(measures.cpu_ms[key]):7.2f} CPU ms per image  "
            f"(runs: {', '.join(f'{value:.1f}' for value in values)})"
        )
    wait_shares = measures.training.wait_shares
    print(
        f"training waited for batches {statistics.median(wait_shares):.1%} of its time (median; runs: "
        f"{', '.join(f'{share:.1%}' for share in wait_shares)})"
    )
    cpu_job, cpu_torchvision = (statistics.median(measures.cpu_ms[key]) for key in ("job", "torchvision"))
    print(f"CPU per image torchvision / job: {cpu_torchvision / cpu_job:.3f} (no target)")
    for ratio in RATIOS:
        print(ratio.line(medians))
    return medians


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="measurements of each kind (medians are reported)")
    parser.add_argument("--images", type=int, default=2000, help="JPEGs in the workload")
    parser.add_argument("--steps", type=int, default=4, help="training batches timed per run")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bench-jpeg-pipeline",
        help="where the JPEGs are written once and reused",
    )
    parser.add_argument("--torch-python", type=Path, default=TORCH_PYTHON, help="the PyTorch environment's python")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as a JSON object here")
    options = parser.parse_args()
    if not options.torch_python.exists():
        parser.error(
            f"{options.torch_python} does not exist: create the PyTorch environment with make bench-torch-venv"
        )
    if options.images < BATCH_SIZE * 2:
        parser.error(f"--images must be at least {BATCH_SIZE * 2}")
    return options


def describe(bench: Setup, steps: int, runs: int, torchvision: str) -> dict:
    folder = bench.folder
    mean_kib = folder_bytes(folder) / 1024 / folder.size
    return {
        "images": folder.size,
        "photo": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG quality {QUALITY}, mean {mean_kib:.0f} KiB",
        "classes": len(folder.classes),
        "image_size": IMAGE_SIZE,
        "batch_size": BATCH_SIZE,
        "workers": bench.workers,
        "crop_min_scale": bench.settings.crop_min_scale,
        "pipeline_images_per_run": folder.size // BATCH_SIZE * BATCH_SIZE,
        "training": f"{MODEL}, {steps} steps per run",
        "runs": runs,
        "torchvision": torchvision,
    }


def main() -> None:
    options = arguments()
    host = machine()
    bench = job_setup(photo_folder(options.work, options.images), 2 + options.runs, options.steps)
    workers = bench.workers
    peer = torch_pipeline(options.torch_python)
    try:
        torchvision = torchvision_note(peer.call("about"))
        root, min_scale = str(bench.folder.root), bench.settings.crop_min_scale
        peer.call("load", root=root, image_size=IMAGE_SIZE, min_scale=min_scale, batch_size=BATCH_SIZE, workers=workers)
        settings = describe(bench, options.steps, options.runs, torchvision)
        print_header("JPEG input pipeline: job vs torchvision vs training consumption, images/s", host, settings)
        measures = Measures(dataclasses.replace(bench, steps=None), peer, WaitRecording(JobTraining(bench)))
        warmup = warm_up(measures.all())
        measures.forget()
        series = interleaved(measures.all(), options.runs)
    finally:
        peer.close()
    medians = print_results(series, workers, measures)
    extra = {
        "per_core_medians": {key: value / workers for key, value in medians.items()},
        "cpu_ms_per_image": {
            key: {"runs": runs, "median": statistics.median(runs)} for key, runs in measures.cpu_ms.items()
        },
        "warmup_seconds": warmup,
        "training_wait_share": {
            "runs": measures.training.wait_shares,
            "median": statistics.median(measures.training.wait_shares),
        },
    }
    write_json(options.json, "jpeg_pipeline", host, settings, "images/s", series, RATIOS, extra)


if __name__ == "__main__":
    main()
