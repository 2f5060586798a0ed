"""Job overhead: the job's steady-state fine-tuning throughput against a bare MindSpore training loop on the
same model, data pipeline, batch, optimizer and image size.

    .venv/bin/python bench/overhead.py [--runs 5] [--image-size 32] [--batch-size 32] [--epochs 1] [--json PATH]

job:  GoogleNet with the new head (job.train.fine_tune_network), job.train.Trainer.train_epoch on the
      job's training pipeline (job.data.build_dataset, built per epoch as the runner does), with its progress
      lines (to /dev/null) and a stop check after every step.
bare: mindspore.train.Model(network, CrossEntropyLoss, optimizer).train(epochs, dataset, dataset_sink_mode=True)
      on an identical network and optimizer (job.train.build_optimizer, the same learning rates) and the same
      pipeline. MindSpore has no dataset sink on CPU: there Model.train feeds the network from Python too.

Both first train one epoch, which compiles their graphs and is not timed; then each run times `--epochs`
epochs of each, the two interleaved (alternating which goes first). Prints medians of images/s and the
ratio job / bare (target >= 0.95).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from training import (
    JobTraining,
    Setup,
    arguments,
    interleaved,
    network,
    print_header,
    report,
    setup,
    training_set,
    warm_up,
)
from workload import Ratio, machine

import mindspore as ms
from mindspore import nn

from job.train import build_optimizer

RATIO = Ratio("job", "bare", 0.95)


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


def main() -> None:
    parser = arguments(__doc__, "timed epochs of each loop per run")
    options = parser.parse_args()
    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as scratch:
        # Enough learning rates for the warm-up epoch and every timed one, for both optimizers alike.
        bench = setup(Path(scratch), options.image_size, options.batch_size, 1 + options.runs * options.epochs)
        settings = {**bench.describe(), "epochs_per_run": options.epochs, "runs": options.runs}
        print_header("job overhead: Trainer.train_epoch vs bare Model.train, images/s", host, settings)
        job = JobTraining(bench)
        bare = BareTraining(bench, job.trainer.rates)
        warmup = warm_up({"job": lambda: job.images_per_second(1), "bare": lambda: bare.images_per_second(1)})
        series = interleaved(
            {
                "job": lambda: job.images_per_second(options.epochs),
                "bare": lambda: bare.images_per_second(options.epochs),
            },
            options.runs,
        )
    report("overhead", host, settings, series, RATIO, options.json, {"warmup_seconds": warmup})


if __name__ == "__main__":
    main()
