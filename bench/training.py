"""What the in-process training benchmarks (overhead.py, pipeline.py, zoo.py) share: the job's settings, input
pipeline, network (any built-in architecture) and training loop on a small real image set, a bare Model.train
loop on the same, interleaved timing, and their report.

Importing this module prepares the process for MindSpore on CPU (job.device.prepare_process caps oneDNN at
AVX2), so a benchmark imports it before anything that imports MindSpore.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator

from workload import Ratio, describe, write_json

from job import data
from contract.settings import DeviceTarget, Settings
from job.config import load_settings
from job.device import configure, prepare_process
from job.digits import write_digits
from job.errors import Terminated
from job.feeds import HostFeed, for_device
from job.progress import Progress

prepare_process(DeviceTarget.CPU)

import mindspore as ms  # noqa: E402
from mindspore import nn  # noqa: E402

from job.models import create_network  # noqa: E402
from job.train import Trainer, build_optimizer, fine_tune_network  # noqa: E402

DIGITS = list(range(10))  # 1347 training images
UNUSED_LOCATIONS = {"FT_MODEL": "bench", "FT_TRAIN_DATA": "unused", "FT_EVAL_DATA": "unused", "FT_OUTPUT": "unused"}


def arguments(description: str, epochs_help: str) -> argparse.ArgumentParser:
    """The options every training benchmark takes: --runs, sizes, epochs per run and --json."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="measurements of each kind (medians are reported)")
    parser.add_argument("--image-size", type=int, default=32, help="training image size in pixels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1, help=epochs_help)
    parser.add_argument(
        "--device", default="CPU", choices=[target.value for target in DeviceTarget], help="FT_DEVICE_TARGET"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as a JSON object here")
    return parser


@dataclass(frozen=True)
class Setup:
    """The job's settings and the training images of one benchmark, the built-in architecture (hub model-name)
    it trains, and at most how many batches an epoch has (None: the whole training set)."""

    settings: Settings
    folder: data.ImageFolder
    model: str = "googlenet"
    steps: int | None = None

    @property
    def workers(self) -> int:
        return data.worker_count(self.settings.num_workers)

    @property
    def image_size(self) -> int:
        """FT_IMAGE_SIZE, which setup() always sets."""
        assert self.settings.image_size is not None
        return self.settings.image_size

    @property
    def steps_per_epoch(self) -> int:
        batches = self.folder.size // self.settings.batch_size  # training batches drop the remainder
        return batches if self.steps is None else min(self.steps, batches)

    @property
    def images_per_epoch(self) -> int:
        return self.steps_per_epoch * self.settings.batch_size

    def describe(self) -> dict:
        settings = self.settings
        return {
            "model": self.model,
            "image_size": settings.image_size,
            "batch_size": settings.batch_size,
            "images": self.folder.size,
            "classes": len(self.folder.classes),
            "steps_per_epoch": self.steps_per_epoch,
            "num_workers": self.workers,
            "augment": settings.augment,
            "hflip": settings.hflip,
            "crop_min_scale": settings.crop_min_scale,
            "log_every": settings.log_every,
            "optimizer": f"Momentum {settings.momentum}, weight decay {settings.weight_decay:g}, warmup-cosine "
            f"lr up to {settings.lr_max:g}",
            "amp_level": settings.amp_level.value,
            "device": settings.device_target.value,
        }


def setup(
    work: Path,
    image_size: int,
    batch_size: int,
    epochs: int,
    model: str = "googlenet",
    steps: int | None = None,
    device: str = "CPU",
) -> Setup:
    """Digits 0-9 written once per image size as image_size PNGs under `work`, the job's default settings for
    them, MindSpore configured as the job configures it (GRAPH mode on `device`, seeded); epochs of at most
    `steps` batches of `model`."""
    root = work / f"digits-{image_size}"
    train_root = root / "train" if root.exists() else write_digits(root, DIGITS, image_size=image_size)[0]
    settings = load_settings(
        {
            **UNUSED_LOCATIONS,
            "FT_IMAGE_SIZE": str(image_size),
            "FT_BATCH_SIZE": str(batch_size),
            "FT_EPOCHS": str(epochs),
            "FT_DEVICE_TARGET": device,
        }
    )
    configure(settings, device_id=0)
    return Setup(settings, data.scan_image_folder(train_root, "FT_TRAIN_DATA"), model, steps)


def training_set(bench: Setup):
    """The job's training pipeline (build_dataset as the runner calls it, augmentation as configured), cut to
    the first `bench.steps` batches when set."""
    settings = bench.settings
    dataset = data.build_dataset(
        bench.folder,
        bench.folder.classes,
        training=True,
        augment=settings.augment,
        hflip=settings.hflip,
        crop_min_scale=settings.crop_min_scale,
        image_size=bench.image_size,
        batch_size=settings.batch_size,
        workers=bench.workers,
    )
    return dataset if bench.steps is None else dataset.take(bench.steps_per_epoch)


def network(bench: Setup) -> nn.Cell:
    """The architecture's backbone as the job loads it (include_top=False) with the job's new head, with the same
    initial weights on every call."""
    ms.set_seed(bench.settings.seed)
    backbone = create_network(bench.model, include_top=False)
    return fine_tune_network(backbone, len(bench.folder.classes), bench.settings.freeze_backbone)


class WaitTimed:
    """A dataset whose tuple iterator adds the time the consumer waits for each batch to `waited`."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self.waited = 0.0

    def create_tuple_iterator(self, **options) -> Iterator:
        iterator = self.dataset.create_tuple_iterator(**options)
        while True:
            started = time.perf_counter()
            batch = next(iterator, None)
            self.waited += time.perf_counter() - started
            if batch is None:
                return
            yield batch


class JobTraining:
    """The job's training: Trainer.train_epoch fed as the runner feeds it (job.feeds.for_device: a pipeline built
    per epoch on the CPU, the dataset sink on Ascend and GPU), progress lines written as JSON (to /dev/null) and a
    SIGTERM-style stop check after every step."""

    def __init__(self, bench: Setup) -> None:
        self.bench = bench
        self.trainer = Trainer(network(bench), bench.settings, bench.steps_per_epoch)
        settings = bench.settings
        self.feed = for_device(settings.device_target, lambda _: training_set(bench), 1, settings.batch_size, 1)
        self.progress = Progress(open(os.devnull, "w", encoding="utf-8"), as_json=True)
        self.stop_requested = threading.Event()
        self.epoch = 0

    def _stop(self) -> None:
        if self.stop_requested.is_set():
            raise Terminated("stopped by SIGTERM")

    def images_per_second(self, epochs: int, wrap: Callable | None = None) -> float:
        """Train `epochs` epochs; `wrap`, if given, sees each epoch's dataset before the trainer does (host
        feeding)."""
        feed = self.feed if wrap is None else HostFeed(lambda _: wrap(training_set(self.bench)))
        started = time.perf_counter()
        for _ in range(epochs):
            self.epoch += 1
            self.trainer.train_epoch(self.epoch, feed, self.progress, self._stop)
        return epochs * self.bench.images_per_epoch / (time.perf_counter() - started)


class BareTraining:
    """A plain Model.train loop on the job's network, optimizer settings and pipeline."""

    def __init__(self, bench: Setup, learning_rates: list[float]) -> None:
        settings = bench.settings
        model_network = network(bench)
        optimizer = build_optimizer(model_network, learning_rates, settings.momentum, settings.weight_decay)
        self.model = ms.train.Model(
            model_network, nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing), optimizer
        )
        self.bench = bench

    def images_per_second(self, epochs: int) -> float:
        started = time.perf_counter()
        self.model.train(epochs, training_set(self.bench), dataset_sink_mode=True)
        return epochs * self.bench.images_per_epoch / (time.perf_counter() - started)


def warm_up(actions: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Run each action once untimed by the benchmark (graph compilation, first pipeline start); its seconds."""
    seconds = {}
    for name, action in actions.items():
        started = time.perf_counter()
        action()
        seconds[name] = round(time.perf_counter() - started, 2)
    print("warm-up, not measured: " + ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items()), flush=True)
    return seconds


def interleaved(measures: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """`runs` values of each measure, alternating which goes first, so drift and order hit all alike."""
    series: dict[str, list[float]] = {name: [] for name in measures}
    for run in range(runs):
        order = list(measures) if run % 2 == 0 else list(reversed(measures))
        for name in order:
            series[name].append(measures[name]())
        print(f"run {run + 1}: " + ", ".join(f"{name} {series[name][-1]:.1f}" for name in measures), flush=True)
    return series


def print_header(title: str, host: dict, settings: dict) -> None:
    print(title)
    print(f"machine: {describe(host)}")
    print("settings: " + ", ".join(f"{key} {value}" for key, value in settings.items()), flush=True)


def report(
    name: str,
    host: dict,
    settings: dict,
    series: dict[str, list[float]],
    ratio: Ratio,
    json_path: Path | None,
    extra: dict | None = None,
) -> None:
    """Print medians (with the per-run values) in images/s and the ratio; write the JSON results if asked."""
    medians = {key: statistics.median(values) for key, values in series.items()}
    for key, values in series.items():
        print(f"{key:<10} median {medians[key]:9.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in values)})")
    print(ratio.line(medians))
    write_json(json_path, name, host, settings, "images/s", series, [ratio], extra)
