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

Each kind runs once untimed (warm-up), then --runs times interleaved (alternating which goes first). Prints medians of
images/s, the seconds of predict_images' steps, and the ratios predict / eval pass and pass / eval pass (target >= 0.95).
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

from workload import HUB_ID, Ratio, describe, machine, prepare_workload, run_job, write_json  # noqa: E402

from contract.predict import PredictSettings  # noqa: E402
from contract.settings import DeviceTarget  # noqa: E402
from job.device import prepare_process, use_device  # noqa: E402

prepare_process(DeviceTarget.CPU)  # before MindSpore is imported

from job import data  # noqa: E402
from job.evaluate import predict  # noqa: E402
from job.prediction import run as prediction  # noqa: E402
from job.prediction.model import LoadedModel, load_model  # noqa: E402
from job.progress import Progress  # noqa: E402
from job.storage import StorageOptions  # noqa: E402

RATIOS = [Ratio("predict", "eval pass", 0.95), Ratio("pass", "eval pass", 0.95)]
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

    def eval_pass(self) -> float:
        """The evaluation set built as Run._prepare builds it, and job.evaluate.predict over it; images/s."""
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
        logits, _ = predict(self.model.network, dataset)
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
        print("batch prediction (predict_images) vs the job's evaluation pass, images/s")
        print(f"machine: {describe(host)}")
        print("settings: " + ", ".join(f"{key} {value}" for key, value in settings.items()), flush=True)
        warmup = {}
        for name, measure in (("predict", bench.predict_images), ("eval pass", bench.eval_pass)):
            started = time.perf_counter()
            measure()
            warmup[name] = round(time.perf_counter() - started, 2)
        print("warm-up, not measured: " + ", ".join(f"{name} {value:.1f} s" for name, value in warmup.items()))
        measures = {"predict": bench.predict_images, "eval pass": bench.eval_pass}
        series: dict[str, list[float]] = {"predict": [], "pass": [], "eval pass": []}
        for index in range(options.runs):
            for name in list(measures) if index % 2 == 0 else reversed(measures):
                series[name].append(measures[name]())
            series["pass"].append(bench.summaries[-1]["images_per_second"])
            print(f"run {index + 1}: " + ", ".join(f"{name} {values[-1]:.1f}" for name, values in series.items()))
    timed = bench.steps.calls[1:]  # not the warm-up
    steps = {step: statistics.median(call.get(step, 0.0) for call in timed) for step in timed[0]}
    steps["other"] = steps["total"] - sum(value for step, value in steps.items() if step not in ("total", "first batch"))
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
    extra = {"warmup_seconds": warmup, "predict_images_seconds": steps, "predict_images_steps": timed}
    write_json(options.json, "predict", host, settings, "images/s", series, RATIOS, extra)


if __name__ == "__main__":
    main()
