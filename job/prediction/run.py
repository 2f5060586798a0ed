"""One batch prediction: the model, the images, one pass through the job's evaluation pipeline, the outputs."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from contract.predict import PredictSettings
from job import data
from job.device import use_device
from job.errors import BadInput
from job.evaluate import classification_metrics, predict, softmax
from job.prediction.images import VARIABLE as IMAGES_VARIABLE
from job.prediction.images import InputImages, input_images
from job.prediction.model import load_model
from job.prediction.output import commit, open_destination, rows, write_local
from job.progress import Progress
from job.storage import StorageOptions

LINKED_CLASS = "images"


def linked_folder(images: InputImages, root: Path) -> data.ImageFolder:
    """The images as one-class ImageFolder of symbolic links named in their order, so the job's own input
    pipeline (data.build_dataset) reads them in that order, whatever their layout."""
    folder = root / LINKED_CLASS
    folder.mkdir(parents=True)
    links = []
    for position, path in enumerate(images.paths):
        link = folder / f"{position:08d}{path.suffix.lower()}"
        os.symlink(os.path.abspath(path), link)  # no resolve(): one system call per image
        links.append(link)
    return data.ImageFolder(root, {LINKED_CLASS: links})


def _accuracy(probabilities: np.ndarray, labels: list[int], classes: list[str]) -> dict:
    """Top-1, top-5, loss and per-class accuracy against the folder labels (log-probabilities as logits)."""
    found = classification_metrics(np.log(np.clip(probabilities, 1e-12, None)), np.array(labels), classes)
    return {key: found[key] for key in ("top1", "top5", "loss", "images", "per_class_accuracy")}


def predict_images(settings: PredictSettings, progress: Progress) -> dict:
    """Classify FT_PREDICT_IMAGES with FT_PREDICT_RUN's model into FT_PREDICT_TO; returns summary.json's content."""
    started = time.perf_counter()
    options = StorageOptions.from_settings(settings)
    destination = open_destination(settings.to, options)  # refused before any work when it cannot take them
    use_device(settings.device_target, settings.device_id)
    workers = data.worker_count(settings.num_workers)
    with tempfile.TemporaryDirectory(prefix="ft-predict-", dir=settings.scratch_dir) as scratch_name:
        scratch = Path(scratch_name)
        model = load_model(settings.run, options, scratch)
        images = input_images(settings.images, model.classes, workers, settings.data_cache, options)
        if not images.names:
            raise BadInput(
                f"{IMAGES_VARIABLE}={settings.images}: none of its {len(images.unreadable)} images decode "
                f"({next(iter(images.unreadable.values()))}); replace them"
            )
        progress.emit(
            "predict_start",
            model=model.source,
            images=len(images.names),
            unreadable=len(images.unreadable),
            labelled=images.labels is not None,
        )
        linked = linked_folder(images, scratch / "linked")
        pass_started = time.perf_counter()  # the pipeline built and run, as an evaluation pass of the job
        dataset = data.build_dataset(
            linked,
            [LINKED_CLASS],
            training=False,
            augment=False,
            hflip=False,
            crop_min_scale=1.0,
            image_size=model.image_size,
            batch_size=settings.batch_size,
            workers=workers,
        )
        outputs, _ = predict(model.network, dataset)
        pass_seconds = time.perf_counter() - pass_started
        probabilities = outputs if model.softmaxed else softmax(outputs)
        records = rows(images.names, probabilities, model.classes, settings.top_k, images.labels)
        files = write_local(scratch, records, images.unreadable, min(settings.top_k, len(model.classes)))
        summary = {
            "model": model.source,
            "epoch": model.description.get("epoch"),
            "images": settings.images,
            "predicted": len(records),
            "unreadable": [{"path": name, "error": problem} for name, problem in images.unreadable.items()],
            "accuracy": _accuracy(probabilities, images.labels, model.classes) if images.labels else None,
            "images_per_second": round(len(records) / pass_seconds, 2),
            "seconds": round(time.perf_counter() - started, 1),
            "predictions": f"{destination.uri}/{files[0].name}",
        }
        commit(destination, files, summary)
    return summary
