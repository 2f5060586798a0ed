"""Batch prediction: the images/s of `python -m job predict` (job.prediction.run.predict_images) against the job's
own evaluation pass over the same images, with the same weights, batch size, workers and device (CPU).

    .venv/bin/python bench/predict.py [--runs 5] [--copies 4] [--batch-size 32] [--json PATH]

model:     one fine-tune of bench/workload.py's hub entry (`python -m job`, 1 epoch on digits 0-9 at 32x32, not
           timed); both sides use its best epoch (model.ckpt, model.json), loaded by job.prediction.model.load_model.
images:    the run's eval set (450 digits) copied --copies times, in class folders (so prediction computes accuracy).
predict:   the whole predict_images call, as a user waits for it: model load (network built, checkpoint read), the
           readability check of every image (a fresh FT_DATA_CACHE each time: a first prediction of these images),
           the pipeline, the pass, predictions.jsonl/.csv and summary.json written to a fresh local directory.
pass:      that call's pass alone, as its summary reports it (images_per_second: job.evaluate.predict over the
           pipeline, which includes compiling the graph of the freshly loaded network on the first batch).
eval pass: what Run._prepare/_evaluate do each evaluation: job.data.build_dataset(training=False) over the folder,
           then job.evaluate.predict, on the network loaded once (its graph compiled in the warm-up, as a run's
           evaluations after the first reuse theirs).
first eval: the same on a network loaded just before (not timed), so its graph is compiled on the first batch as
           in a run's first evaluation and in every prediction: the pass-for-pass comparison.

Each kind runs once untimed (warm-up), then --runs times interleaved (alternating which goes first). Prints medians
of images/s, the seconds of predict_images' steps, and the ratios pass / first eval (the target, >= 0.95), pass /
eval pass and predict / eval pass (the whole call, with its fixed costs: reported).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training import interleaved, print_header, warm_up  # prepares the process for MindSpore on CPU first
from workload import HUB_ID, Ratio, machine, prepare_workload, run_job, write_json

from contract.predict import PredictSettings
from contract.settings import DeviceTarget
from job import data
from job.device import use_device
from job.evaluate import predict
from job.prediction import run as prediction
from job.prediction.model import LoadedModel, load_model
from job.progress import Progress
from job.storage import StorageOptions

RATIOS = [Ratio("pass", "first eval", 0.95), Ratio("pass", "eval pass", 0.95), Ratio("predict", "eval pass", 0.95)]
FINE_TUNE = {
    "FT_MODEL": HUB_ID,
    "FT_EPOCHS": "1",
    "FT_IMAGE_SIZE": "32",
    "FT_LOG_EVERY": "1000",
    "FT_EXPORT_MINDIR": "false",
}
STEPS = {  # what predict_images calls (names in job.prediction.run) -> the step they are counted in
    "load_model": "model load",
    "input_images": "image check",
    "linked_folder": "links",
    "predict": "pass",
    "write_local": "outputs",
    "commit": "outputs",
}


class FirstCallTimed:
    """A network that records how long its first call takes (GRAPH mode compiles the graph then)."""

    def __init__(self, network: Any, seconds: dict[str, float]) -> None:
        self.network, self.seconds, self.called = network, seconds, False

    def set_train(self, mode: bool) -> None:
        self.network.set_train(mode)

    def __call__(self, images: Any) -> Any:
        if self.called:
            return self.network(images)
        started = time.perf_counter()
        outputs = self.network(images)
        outputs.asnumpy()
        self.called = True
        self.seconds["first batch"] += time.perf_counter() - started
        return outputs


class TimedSteps:
    """Seconds of predict_images' steps per call, by wrapping the functions job.prediction.run calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, float]] = []

    def install(self) -> None:
        for name, step in STEPS.items():
            setattr(prediction, name, self._timed(getattr(prediction, name), step))

    def _timed(self, function: Callable, step: str) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            found = function(*args, **kwargs)
            if isinstance(found, LoadedModel):
                found = dataclasses.replace(found, network=FirstCallTimed(found.network, self.calls[-1]))
            self.calls[-1][step] += time.perf_counter() - started
            return found

        return timed


def copied_images(evaluation: Path, root: Path, copies: int) -> Path:
    """The eval set's class folders with every image `copies` times (distinct names), under `root`."""
    for copy in range(copies):
        for image in evaluation.glob("*/*.png"):
            (root / image.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, root / image.parent.name / f"{copy}-{image.name}")
    return root


class Bench:
    """Both sides on one finished run and one image folder."""

    def __init__(self, work: Path, run: Path, images: Path, batch_size: int) -> None:
        self.work, self.calls = work, 0
        self.settings = PredictSettings(
            run=str(run),
            images=str(images),
            to=str(work / "unused"),
            device_target=DeviceTarget.CPU,
            batch_size=batch_size,
            data_cache=work / "unused-cache",
            scratch_dir=work,
        )
        self.progress = Progress(open(os.devnull, "w", encoding="utf-8"), as_json=True)
        self.steps = TimedSteps()
        self.steps.install()
        self.summaries: list[dict] = []
        use_device(DeviceTarget.CPU, 0)
        self.model = load_model(str(run), StorageOptions(), work)
        self.folder = data.scan_image_folder(images, "FT_EVAL_DATA")  # once, at a run's start
        self.workers = data.worker_count(self.settings.num_workers)

    def predict_images(self) -> float:
        """One whole predict_images call into a fresh destination, with a fresh data cache; images/s."""
        self.calls += 1
        call = f"call-{self.calls}"
        settings = self.settings.model_copy(
            update={"to": str(self.work / call / "predictions"), "data_cache": self.work / call / "cache"}
        )
        self.steps.calls.append(defaultdict(float))
        started = time.perf_counter()
        summary = prediction.predict_images(settings, self.progress)
        seconds = time.perf_counter() - started
        self.steps.calls[-1]["total"] = seconds
        self.summaries.append(summary)
        return summary["predicted"] / seconds

    def first_eval(self) -> float:
        """eval_pass on a network loaded just before (untimed): its graph compiles on the first batch."""
        return self.eval_pass(load_model(self.settings.run, StorageOptions(), self.work).network)

    def eval_pass(self, network: Any = None) -> float:
        """The evaluation set built as Run._prepare builds it, and job.evaluate.predict over it; images/s."""
        network = self.model.network if network is None else network
        started = time.perf_counter()
        dataset = data.build_dataset(
            self.folder,
            self.model.classes,
            training=False,
            augment=False,
            hflip=False,
            crop_min_scale=1.0,
            image_size=self.model.image_size,
            batch_size=self.settings.batch_size,
            workers=self.workers,
        )
        logits, _ = predict(network, dataset)
        return len(logits) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="measurements of each kind (medians are reported)")
    parser.add_argument("--copies", type=int, default=4, help="times the eval set's images are predicted")
    parser.add_argument("--batch-size", type=int, default=32, help="FT_BATCH_SIZE of both sides (and the fine-tune)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as a JSON object here")
    options = parser.parse_args()
    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as scratch:
        work = Path(scratch)
        train, evaluation, hub_root = prepare_workload(work, list(range(10)))
        run = work / "run"
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FT_")},
            **FINE_TUNE,
            "FT_BATCH_SIZE": str(options.batch_size),
            "FT_HUB_MIRROR": str(hub_root),
            "FT_HUB_CACHE": str(work / "hub-cache"),
            "FT_TRAIN_DATA": str(train),
            "FT_EVAL_DATA": str(evaluation),
            "FT_OUTPUT": str(run),
            "FT_SCRATCH_DIR": str(work),
        }
        trained = run_job(environment)
        bench = Bench(work, run, copied_images(evaluation, work / "images", options.copies), options.batch_size)
        settings = {
            "model": f"googlenet ({HUB_ID}, 1 epoch, top-1 {trained.summary['top1']:.4f})",
            "image_size": bench.model.image_size,
            "batch_size": options.batch_size,
            "images": bench.folder.size,
            "copies": options.copies,
            "classes": len(bench.model.classes),
            "num_workers": bench.workers,
            "device": "CPU",
            "runs": options.runs,
        }
        print_header("batch prediction (predict_images) vs the job's evaluation pass, images/s", host, settings)
        measures = {"predict": bench.predict_images, "eval pass": bench.eval_pass, "first eval": bench.first_eval}
        warmup = warm_up(dict(measures))
        series = interleaved(measures, options.runs)
    series["pass"] = [summary["images_per_second"] for summary in bench.summaries[1:]]
    timed = bench.steps.calls[1:]  # not the warm-up
    steps = {step: statistics.median(call.get(step, 0.0) for call in timed) for step in timed[0]}
    counted = sum(value for step, value in steps.items() if step not in ("total", "first batch"))
    steps["other"] = steps["total"] - counted
    medians = {key: statistics.median(values) for key, values in series.items()}
    for key, values in series.items():
        print(f"{key:<10} median {medians[key]:8.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in values)})")
    print(
        f"predict_images seconds (medians): {', '.join(f'{step} {value:.2f}' for step, value in steps.items())}; "
        f"eval pass {bench.folder.size / medians['eval pass']:.2f} (first batch: within the pass, its first call "
        f"of the freshly loaded network)"
    )
    for ratio in RATIOS:
        print(ratio.line(medians))
    fixed = steps["model load"] + steps["image check"] + steps["links"] + steps["first batch"]
    note = (
        f"the whole call's gap is fixed per call: model load {steps['model load']:.2f} s, image check "
        f"{steps['image check']:.2f} s, links {steps['links']:.2f} s and the first batch's graph compilation "
        f"{steps['first batch']:.2f} s ({fixed:.2f} s together, against the eval pass's "
        f"{bench.folder.size / medians['eval pass']:.2f} s for all {bench.folder.size} images); pass / first eval "
        f"compares both on a freshly loaded network, compilation included"
    )
    print(note)
    extra = {"note": note, "warmup_seconds": warmup, "predict_images_seconds": steps, "predict_images_steps": timed}
    write_json(options.json, "predict", host, settings, "images/s", series, RATIOS, extra)


if __name__ == "__main__":
    main()
