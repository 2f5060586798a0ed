"""One fine-tuning run from settings to results: checks, hub backbone, training, evaluation, artefacts."""

from __future__ import annotations

import time
from dataclasses import asdict

import mindspore as ms
from mindspore import nn

from job import data, hub
from job.config import Settings
from job.device import configure
from job.errors import BadInput
from job.evaluate import classification_metrics, predict
from job.export import export_mindir
from job.output import CHECKPOINTS, METRICS, OutputDir
from job.progress import Progress
from job.report import plot_confusion_matrix, plot_training_curves
from job.storage import local_path
from job.train import EpochRecord, fine_tune_network, fit

CLASSES = f"{CHECKPOINTS}/classes.json"
BEST = f"{CHECKPOINTS}/best.ckpt"


def _load_image_sets(settings: Settings, workers: int) -> tuple[data.ImageFolder, data.ImageFolder, list[str]]:
    train = data.scan_image_folder(local_path(settings.train_data), "FT_TRAIN_DATA")
    evaluation = data.scan_image_folder(local_path(settings.eval_data), "FT_EVAL_DATA")
    classes = data.check_classes(train, evaluation, settings.num_classes)
    if train.size < settings.batch_size:
        raise BadInput(f"FT_TRAIN_DATA has {train.size} images, fewer than FT_BATCH_SIZE={settings.batch_size}; "
                       f"lower the batch size or add images")
    data.check_images_readable(train, "FT_TRAIN_DATA", workers)
    data.check_images_readable(evaluation, "FT_EVAL_DATA", workers)
    return train, evaluation, classes


def _hub_backbone(settings: Settings) -> nn.Cell:
    return hub.load(settings.model, include_top=False, mirror=settings.hub_mirror, cache_dir=settings.hub_cache,
                    offline=settings.hub_offline, network_dir=settings.hub_network_dir)


def _is_eval_epoch(epoch: int, settings: Settings) -> bool:
    return epoch == settings.epochs or (settings.eval_every > 0 and epoch % settings.eval_every == 0)


def _save_checkpoint(cell: nn.Cell, output: OutputDir, relative: str, extra: dict) -> None:
    staged = output.staging_path(relative)
    ms.save_checkpoint(cell, str(staged), append_dict=extra)
    output.commit(staged, relative)


def run(settings: Settings, progress: Progress, backbone: nn.Cell | None = None) -> dict:
    """Fine-tune and evaluate; returns the summary printed as the job's last line.

    `backbone` replaces the hub backbone (for pretraining a hub entry from scratch).
    """
    started = time.perf_counter()
    workers = data.worker_count(settings.num_workers)
    train_folder, eval_folder, classes = _load_image_sets(settings, workers)
    output = OutputDir(settings.output)
    output.claim()
    configure(settings)
    if backbone is None:
        backbone = _hub_backbone(settings)
    network = fine_tune_network(backbone, len(classes), settings.freeze_backbone)
    output.write_json(CLASSES, classes)
    progress.emit("start", model=settings.model, classes=len(classes), train_images=train_folder.size,
                  eval_images=eval_folder.size, device=settings.device_target.value, epochs=settings.epochs)

    shared = dict(image_size=settings.image_size, workers=workers, augment=settings.augment, hflip=settings.hflip,
                  crop_min_scale=settings.crop_min_scale)
    train_set = data.build_dataset(train_folder, classes, training=True, batch_size=settings.batch_size, **shared)
    eval_set = data.build_dataset(eval_folder, classes, training=False, batch_size=settings.batch_size, **shared)
    best = {"top1": -1.0, "epoch": 0}
    final_metrics: dict = {}

    def end_of_epoch(record: EpochRecord, step_cell: nn.Cell) -> None:
        nonlocal final_metrics
        _save_checkpoint(step_cell, output, f"{CHECKPOINTS}/epoch-{record.epoch:04d}.ckpt",
                         {"epoch": record.epoch})
        if _is_eval_epoch(record.epoch, settings):
            final_metrics = classification_metrics(*predict(network, eval_set), classes)
            record.eval = {key: final_metrics[key] for key in ("top1", "top5")}
            if final_metrics["top1"] > best["top1"]:
                best.update(top1=final_metrics["top1"], epoch=record.epoch)
                _save_checkpoint(network, output, BEST, {"epoch": record.epoch})
        progress.emit("epoch", **{key: value for key, value in asdict(record).items()})

    history = [asdict(record) for record in fit(network, train_set, settings, progress, end_of_epoch)]
    plot_training_curves(history, output.path("plots/training_curves.png"))
    plot_confusion_matrix(final_metrics["confusion_matrix"], classes, output.path("plots/confusion_matrix.png"))
    artefacts = {"best_checkpoint": BEST, "classes": CLASSES, "plots": ["plots/training_curves.png",
                                                                       "plots/confusion_matrix.png"]}
    if settings.export_mindir:
        output.commit(export_mindir(network, settings.image_size, output.staging_path("export/model.mindir")),
                      "export/model.mindir")
        artefacts["mindir"] = "export/model.mindir"
    summary = {"top1": final_metrics["top1"], "top5": final_metrics["top5"], "best_top1": best["top1"],
               "best_epoch": best["epoch"], "epochs": settings.epochs, "seconds": round(time.perf_counter() - started, 1),
               "metrics": str(output.path(METRICS))}
    output.write_json(METRICS, {"summary": summary, "final": final_metrics, "history": history, "classes": classes,
                                "artefacts": artefacts, "settings": settings.model_dump(mode="json")})
    return summary
