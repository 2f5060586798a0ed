"""Data pipeline: the images/s the job's training pipeline delivers alone against the images/s training takes
from it.

    .venv/bin/python bench/pipeline.py [--runs 5] [--image-size 32] [--batch-size 32] [--epochs 1]
                                       [--pipeline-epochs 5] [--json PATH]

pipeline: job.data.build_dataset(training=True) with the job's default augmentation (random resized crop and
          flip) and num_workers (job.data.worker_count(0): one per core), built per epoch as the runner does,
          iterated as the trainer iterates it (tuple iterator of Tensors) without training.
training: job.train.Trainer.train_epoch on the same pipeline; the share of its time spent waiting for the
          next batch is printed too.

The trainer first trains one epoch, which compiles its graph and is not timed; then each run measures both,
interleaved (alternating which goes first). Prints medians of images/s and the ratio pipeline / training
(target >= 2: the pipeline is not the bottleneck).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from training import (
    JobTraining,
    Setup,
    WaitTimed,
    arguments,
    interleaved,
    print_header,
    report,
    setup,
    training_set,
    warm_up,
)
from workload import Ratio, machine

RATIO = Ratio("pipeline", "training", 2.0)


def pipeline_images_per_second(bench: Setup, epochs: int) -> float:
    """Iterate `epochs` freshly built training pipelines to the end, doing nothing with the batches."""
    started = time.perf_counter()
    images = 0
    for _ in range(epochs):
        for _, labels in training_set(bench).create_tuple_iterator(num_epochs=1):
            images += labels.shape[0]
    return images / (time.perf_counter() - started)


class WaitRecording:
    """The job's training, recording the share of each measurement spent waiting for batches."""

    def __init__(self, training: JobTraining) -> None:
        self.training = training
        self.wait_shares: list[float] = []

    def images_per_second(self, epochs: int) -> float:
        timed: list[WaitTimed] = []

        def wrap(dataset) -> WaitTimed:
            timed.append(WaitTimed(dataset))
            return timed[-1]

        started = time.perf_counter()
        rate = self.training.images_per_second(epochs, wrap)
        self.wait_shares.append(sum(dataset.waited for dataset in timed) / (time.perf_counter() - started))
        return rate


def main() -> None:
    parser = arguments(__doc__, "timed training epochs per run")
    parser.add_argument("--pipeline-epochs", type=int, default=5, help="pipeline passes timed per run")
    options = parser.parse_args()
    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as scratch:
        bench = setup(Path(scratch), options.image_size, options.batch_size, 1 + options.runs * options.epochs)
        settings = {
            **bench.describe(),
            "training_epochs_per_run": options.epochs,
            "pipeline_epochs_per_run": options.pipeline_epochs,
            "runs": options.runs,
        }
        print_header("data pipeline alone vs training consumption, images/s", host, settings)
        training = WaitRecording(JobTraining(bench))
        warmup = warm_up(
            {
                "pipeline": lambda: pipeline_images_per_second(bench, 1),
                "training": lambda: training.training.images_per_second(1),
            }
        )
        series = interleaved(
            {
                "pipeline": lambda: pipeline_images_per_second(bench, options.pipeline_epochs),
                "training": lambda: training.images_per_second(options.epochs),
            },
            options.runs,
        )
    wait_share = statistics.median(training.wait_shares)
    print(
        f"training waited for batches {wait_share:.2%} of its time (median; runs: "
        f"{', '.join(f'{share:.2%}' for share in training.wait_shares)})"
    )
    report(
        "pipeline",
        host,
        settings,
        series,
        RATIO,
        options.json,
        {"warmup_seconds": warmup, "training_wait_share": {"runs": training.wait_shares, "median": wait_share}},
    )


if __name__ == "__main__":
    main()
