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

After the timed runs, one more epoch of the job's loop counts the host reads (Tensor.asnumpy, .item, .tolist:
each one waits for the device) after every step: the goal is none between progress windows (FT_LOG_EVERY).
`--device GPU` or `Ascend` runs the same comparison there (the job's loop then feeds through the dataset sink).

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
READ_METHODS = ("asnumpy", "_item", "tolist")  # how a tensor's value reaches the host


def host_reads_per_step(job: JobTraining) -> list[int]:
    """One epoch of the job's loop: the host reads before the first step's stop check, between each step's and the
    next one's (a window's read comes after the check of the step that closes it), and after the last one's."""
    import mindspore as ms

    count = [0]
    originals = {name: getattr(ms.Tensor, name) for name in READ_METHODS}

    def counted(method):
        def reading(tensor, *args, **kwargs):
            count[0] += 1
            return method(tensor, *args, **kwargs)

        return reading

    per_step: list[int] = []
    stop = job._stop

    def recording_stop() -> None:
        per_step.append(count[0])
        stop()

    job._stop = recording_stop
    for name, method in originals.items():
        setattr(ms.Tensor, name, counted(method))
    try:
        job.images_per_second(1)
    finally:
        for name, method in originals.items():
            setattr(ms.Tensor, name, method)
        job._stop = stop
    per_step.append(count[0])  # and the reads after the last step's check: the end of the epoch
    return [after - before for before, after in zip([0, *per_step], per_step)]


def main() -> None:
    parser = arguments(__doc__, "timed epochs of each loop per run")
    parser.add_argument("--model", default="googlenet", choices=sorted(ARCHITECTURES), help="built-in architecture")
    parser.add_argument("--steps", type=int, help="batches per epoch at most (default: the whole training set)")
    options = parser.parse_args()
    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as scratch:
        # Enough learning rates for the warm-up epoch, every timed one and the counted one, for both optimizers.
        bench = setup(
            Path(scratch),
            options.image_size,
            options.batch_size,
            2 + options.runs * options.epochs,
            options.model,
            options.steps,
            options.device,
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
        first_step = (job.trainer.steps_taken or 0) + 1
        reads = host_reads_per_step(job)
    log_every = bench.settings.log_every
    steps = range(first_step, first_step + len(reads) - 1)
    windows = sum(1 for step in steps if step % log_every == 0)
    at_end = 0 if steps[-1] % log_every == 0 else 1  # the epoch's end reuses a window read that closed it
    others = sum(reads) - windows - at_end
    print(
        f"host reads in an epoch of {len(steps)} steps (from step {first_step}): {sum(reads)} = {windows} at the "
        f"ends of progress windows of {log_every} steps + {at_end} at the end of the epoch + {others} others  "
        f"(target 0 others) {'PASS' if others == 0 else 'MISS'}"
    )
    extra = {"warmup_seconds": warmup, "host_reads_per_step": reads, "host_reads_outside_windows": others}
    report("overhead", host, settings, series, RATIO, options.json, extra)


if __name__ == "__main__":
    main()
