"""Job overhead: the job's steady-state fine-tuning throughput against a bare MindSpore training loop on the
same model, data pipeline, batch, optimizer and image size.

    .venv/bin/python bench/overhead.py [--runs 5] [--model googlenet] [--image-size 32] [--batch-size 32]
                                       [--epochs 1] [--steps N] [--json PATH]

job:  the --model architecture (a built-in hub model-name, job.models.ARCHITECTURES; GoogleNet by default) built
      as the job loads it (include_top=False) with the new head (job.train.fine_tune_network),
      job.train.Trainer.train_epoch on the job's training pipeline (job.data.build_dataset, built per epoch as
      the runner does), with its progress lines (to /dev/null) and a stop check after every step.
bare: mindspore.train.Model(network, CrossEntropyLoss, optimizer).train(epochs, dataset, dataset_sink_mode=True)
      on an identical network and optimizer (job.train.build_optimizer, the same learning rates) and the same
      pipeline. MindSpore has no dataset sink on CPU: there Model.train feeds the network from Python too.

An epoch is the whole training set (1347 digits), or its first `--steps` batches. Both first train one epoch,
which compiles their graphs and is not timed; then each run times `--epochs` epochs of each, the two
interleaved (alternating which goes first). Prints medians of images/s and the ratio job / bare (target >= 0.95).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from training import BareTraining, JobTraining, arguments, interleaved, print_header, report, setup, warm_up
from workload import Ratio, machine

from job.models import ARCHITECTURES

RATIO = Ratio("job", "bare", 0.95)


def main() -> None:
    parser = arguments(__doc__, "timed epochs of each loop per run")
    parser.add_argument("--model", default="googlenet", choices=sorted(ARCHITECTURES), help="built-in architecture")
    parser.add_argument("--steps", type=int, help="batches per epoch at most (default: the whole training set)")
    options = parser.parse_args()
    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as scratch:
        # Enough learning rates for the warm-up epoch and every timed one, for both optimizers alike.
        bench = setup(
            Path(scratch),
            options.image_size,
            options.batch_size,
            1 + options.runs * options.epochs,
            options.model,
            options.steps,
        )
        settings = {**bench.describe(), "epochs_per_run": options.epochs, "runs": options.runs}
        title = f"job overhead ({options.model}): Trainer.train_epoch vs bare Model.train, images/s"
        print_header(title, host, settings)
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
