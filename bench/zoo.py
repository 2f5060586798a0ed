"""Model zoo throughput: for each built-in architecture (job.models.ARCHITECTURES, at its default input size:
224x224, 299x299 for InceptionV3), training and inference images/s with MindSpore against torchvision's
equivalent network in plain PyTorch, and the job's training loop against a bare MindSpore loop.

    .venv/bin/python bench/zoo.py [--runs 5] [--models resnet18,resnet50] [--batch-size 16] [--steps 10]
                                  [--threads N] [--json PATH]

It needs the PyTorch environment: `make bench-torch-venv` (.venv-torch, about 5.5 GB; never in .venv).

mindspore train: the job's fine-tune network (the backbone as the job loads it, include_top=False, with the new
                 head: job.train.fine_tune_network) and its training step (job.train.Trainer.step: forward,
                 CrossEntropyLoss, gradients, Momentum), GRAPH mode, on one random batch.
pytorch train:   torchvision.models.<equivalent>(num_classes) with random weights in model.train(): zero_grad,
                 forward, CrossEntropyLoss, backward, SGD with the job's momentum, learning rate and weight decay
                 (none on biases and BatchNorm, as the job's optimizer), on one random batch of the same shape.
mindspore infer: job.models.create_network(name, num_classes, include_top=True) in set_train(False).
pytorch infer:   the same torchvision network in model.eval() under torch.inference_mode().
job, bare:       bench/overhead.py's comparison on this network and size: Trainer.train_epoch against
                 Model.train(dataset_sink_mode=True), both on the job's training pipeline of digits written at
                 this size, each epoch cut to its first `--steps` batches.

Every measure times `--steps` batches of `--batch-size` images. PyTorch runs in a subprocess with the
interpreter of .venv-torch (bench/torch_peer.py, answering one request at a time, so the two never run at the
same time and never share a process); both get `--threads` threads (MindSpore: device_context.cpu.op_tuning.
threads_num, which the job sets to its share of the pod's usable CPUs; PyTorch: torch.set_num_threads). MindSpore
runs as the job runs it, oneDNN capped at AVX2 (job.device.prepare_process); PyTorch gets the ISA it picks,
unless ONEDNN_MAX_CPU_ISA was set before the start. For each architecture every measure first runs once untimed
(graph compilation, first allocations), then `--runs` runs of all six are interleaved (alternating which goes
first). Prints the medians in one table with the ratios mindspore / pytorch (no target) and job / bare (target
>= 0.95); the job / bare ratios are the ones checked.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

USER_ONEDNN_ISA = os.environ.get("ONEDNN_MAX_CPU_ISA")  # before training.py prepares the process for MindSpore

from training import BareTraining, JobTraining, Setup, interleaved, print_header, setup, warm_up  # noqa: E402
from peer import PeerProcess  # noqa: E402
from workload import Ratio, machine, write_json  # noqa: E402

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402

from job.models import ARCHITECTURES, create_network  # noqa: E402

BENCH = Path(__file__).resolve().parent
TORCH_PYTHON = BENCH.parent / ".venv-torch" / "bin" / "python"
# hub model-name -> torchvision.models name; a name not here is looked up in torchvision as it is
TORCHVISION = {
    "googlenet": "googlenet",
    "mobilenetv2": "mobilenet_v2",
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "densenet121": "densenet121",
    "vgg16": "vgg16",
    "inceptionv3": "inception_v3",
    "mobilenetv3_large": "mobilenet_v3_large",
    "resnext50": "resnext50_32x4d",
}
MEASURES = ("mindspore train", "pytorch train", "mindspore infer", "pytorch infer", "job", "bare")
JOB_TARGET = 0.95


def torch_peer(python: Path, threads: int) -> PeerProcess:
    """bench/torch_peer.py in .venv-torch's interpreter, with the user's oneDNN setting rather than MindSpore's."""
    environment = dict(os.environ)
    environment.pop("ONEDNN_MAX_CPU_ISA", None)  # job.device.prepare_process's cap is MindSpore's
    if USER_ONEDNN_ISA is not None:
        environment["ONEDNN_MAX_CPU_ISA"] = USER_ONEDNN_ISA
    command = [str(python), str(BENCH / "torch_peer.py"), "--threads", str(threads)]
    return PeerProcess(command, environment, "PyTorch peer")


def timed(steps: int, images: int, step: Callable[[], object]) -> float:
    """images/s of `steps` calls of `step`, each handling `images` images."""
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * images / (time.perf_counter() - started)


class Architecture:
    """Everything measured for one architecture: the MindSpore networks in this process, the PyTorch one in the
    peer (None when torchvision has no equivalent)."""

    def __init__(self, bench: Setup, peer: PeerProcess, steps: int) -> None:
        self.bench, self.peer, self.steps = bench, peer, steps
        settings = bench.settings
        batch, size, classes = settings.batch_size, bench.image_size, len(bench.folder.classes)
        rng = np.random.default_rng(settings.seed)
        self.images = ms.Tensor(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
        self.labels = ms.Tensor(rng.integers(0, classes, batch, dtype=np.int32))  # as the pipeline's labels
        self.job = JobTraining(bench)
        self.bare = BareTraining(bench, self.job.trainer.rates)
        self.inference = create_network(bench.model, num_classes=classes, include_top=True)
        self.inference.set_train(False)
        self.torchvision = TORCHVISION.get(bench.model, bench.model)
        loaded = peer.ask(
            "load",
            model=self.torchvision,
            num_classes=classes,
            image_size=size,
            batch_size=batch,
            lr=settings.lr_max,
            momentum=settings.momentum,
            weight_decay=settings.weight_decay,
            label_smoothing=settings.label_smoothing,
        )
        self.torch_problem = loaded.get("error")
        if self.torch_problem:
            print(f"{bench.model}: no PyTorch side ({self.torch_problem})", flush=True)

    def _train_step(self) -> None:
        loss, _ = self.job.trainer.step(self.images, self.labels)
        loss.asnumpy()  # as the job reads each step's loss

    def _infer(self) -> None:
        self.inference(self.images).asnumpy()

    def measures(self) -> dict[str, Callable[[], float]]:
        batch, steps = self.bench.settings.batch_size, self.steps
        found: dict[str, Callable[[], float]] = {
            "mindspore train": lambda: timed(steps, batch, self._train_step),
            "pytorch train": lambda: self.peer.call("train", steps=steps)["images_per_second"],
            "mindspore infer": lambda: timed(steps, batch, self._infer),
            "pytorch infer": lambda: self.peer.call("infer", steps=steps)["images_per_second"],
            "job": lambda: self.job.images_per_second(1),
            "bare": lambda: self.bare.images_per_second(1),
        }
        return {key: value for key, value in found.items() if not (self.torch_problem and key.startswith("pytorch"))}


def ratios(name: str, medians: dict[str, float]) -> list[Ratio]:
    """mindspore / pytorch for training and inference (where PyTorch ran), job / bare with its target."""
    found = [
        Ratio(f"{name} mindspore {kind}", f"{name} pytorch {kind}")
        for kind in ("train", "infer")
        if f"{name} pytorch {kind}" in medians
    ]
    return [*found, Ratio(f"{name} job", f"{name} bare", JOB_TARGET)]


COLUMNS = (  # heading, numerator, denominator (None: the median alone)
    ("train MS", "mindspore train", None),
    ("train PT", "pytorch train", None),
    ("MS/PT", "mindspore train", "pytorch train"),
    ("infer MS", "mindspore infer", None),
    ("infer PT", "pytorch infer", None),
    ("MS/PT", "mindspore infer", "pytorch infer"),
    ("job", "job", None),
    ("bare", "bare", None),
    ("job/bare", "job", "bare"),
)


def table(names: list[str], sizes: dict[str, int], medians: dict[str, float]) -> list[str]:
    """One row per architecture: the medians in images/s and the three ratios (MS: MindSpore, PT: PyTorch)."""
    rows = [["model", "size", *(heading for heading, _, _ in COLUMNS), ""]]
    for name in names:
        row = [name, str(sizes[name])]
        for _, numerator, denominator in COLUMNS:
            top, bottom = medians.get(f"{name} {numerator}"), medians.get(f"{name} {denominator}")
            if top is None or (denominator is not None and bottom is None):
                row.append("-")
            else:
                row.append(f"{top:.1f}" if bottom is None else f"{top / bottom:.3f}")
        row.append("PASS" if medians[f"{name} job"] / medians[f"{name} bare"] >= JOB_TARGET else "MISS")
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if column in (0, len(row) - 1) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="measurements of each kind (medians are reported)")
    parser.add_argument(
        "--models", help="comma-separated built-in model-names (default: every registered one, in registry order)"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="batches timed per measurement")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="compute threads of each side (default: the usable cores)",
    )
    parser.add_argument("--torch-python", type=Path, default=TORCH_PYTHON, help="the PyTorch environment's python")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as a JSON object here")
    options = parser.parse_args()
    names = options.models.split(",") if options.models else list(ARCHITECTURES)
    unknown = [name for name in names if name not in ARCHITECTURES]
    if unknown:
        parser.error(f"unknown model {unknown[0]}; registered: {', '.join(ARCHITECTURES)}")
    if not options.torch_python.exists():
        parser.error(
            f"{options.torch_python} does not exist: create the PyTorch environment with make bench-torch-venv"
        )
    ms.set_device("CPU")
    ms.device_context.cpu.op_tuning.threads_num(options.threads)
    host = machine()
    peer = torch_peer(options.torch_python, options.threads)
    try:
        pytorch = peer.ask("about")
        settings = {
            "models": ",".join(names),
            "batch_size": options.batch_size,
            "steps_per_measure": options.steps,
            "runs": options.runs,
            "threads": options.threads,
            "pytorch": f"torch {pytorch['torch']}, torchvision {pytorch['torchvision']}, "
            f"{pytorch['threads']} threads, CPU capability {pytorch['cpu_capability']}",
            "mindspore_onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "unset"),
        }
        print_header("model zoo: MindSpore vs PyTorch, job vs bare loop, images/s", host, settings)
        series: dict[str, list[float]] = {}
        details: dict[str, dict] = {}
        with tempfile.TemporaryDirectory(prefix="bench-zoo-") as scratch:
            for name in names:
                size = ARCHITECTURES[name].image_size
                # enough learning rates for every step of both training measures, whatever an epoch's length
                epochs = (1 + options.runs) * (1 + options.steps)
                bench = setup(Path(scratch), size, options.batch_size, epochs, name, options.steps)
                print(f"\n{name} at {size}x{size}:", flush=True)
                architecture = Architecture(bench, peer, options.steps)
                measures = architecture.measures()
                warmup = warm_up(measures)
                for key, values in interleaved(measures, options.runs).items():
                    series[f"{name} {key}"] = values
                details[name] = {
                    "image_size": size,
                    "torchvision": architecture.torchvision,
                    "pytorch_problem": architecture.torch_problem,
                    "warmup_seconds": warmup,
                }
                del architecture, measures
                gc.collect()
    finally:
        peer.close()
    medians = {key: statistics.median(values) for key, values in series.items()}
    print()
    print(f"images/s, medians of {options.runs} runs; batch {options.batch_size}, {options.steps} batches per run")
    for line in table(names, {name: details[name]["image_size"] for name in names}, medians):
        print(line)
    missed = [name for name in names if medians[f"{name} job"] / medians[f"{name} bare"] < JOB_TARGET]
    print(
        f"job / bare (target >= {JOB_TARGET:g}): met by {len(names) - len(missed)} of {len(names)}"
        + (f"; MISS: {', '.join(missed)}" if missed else "")
    )
    all_ratios = [found for name in names for found in ratios(name, medians)]
    write_json(options.json, "zoo", host, settings, "images/s", series, all_ratios, {"models": details})


if __name__ == "__main__":
    main()
