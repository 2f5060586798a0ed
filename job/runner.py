"""One fine-tuning run from settings to committed results, resuming from the newest verified checkpoint."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import mindspore.dataset as ds
from mindspore import nn

from job import data, hub, run_record
from job.checkpoints import CheckpointLog, best_epoch, new_attempt_id
from job.committer import BackgroundCommitter, PendingCommit
from job.config import Settings
from job.data_source import materialize
from job.device import configure
from job.errors import BadInput, Terminated, Unavailable
from job.evaluate import classification_metrics, predict
from job.export import export_mindir
from job.progress import Progress
from job.report import plot_confusion_matrix, plot_training_curves
from job.results import ResultWriter
from job.storage import Store, open_store
from job.train import Trainer, fine_tune_network

STATE_FILE = "train_state.ckpt"
CLASSES_FILE = "classes.json"  # committed next to every checkpoint, so each is usable on its own
EPOCH_SEED_STRIDE = 100_003  # the data order of epoch e depends only on (FT_SEED, e): a resumed run repeats it


@contextmanager
def termination_requested() -> Iterator[threading.Event]:
    """An event set by SIGTERM (what Kubernetes sends before killing a pod) while the block runs."""
    event = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGTERM, previous)


def _image_sets(settings: Settings, workers: int) -> tuple[data.ImageFolder, data.ImageFolder, list[str], dict]:
    options = settings.storage_options()
    train_root, train_print = materialize(settings.train_data, "FT_TRAIN_DATA", settings.data_cache, options)
    eval_root, eval_print = materialize(settings.eval_data, "FT_EVAL_DATA", settings.data_cache, options)
    train = data.scan_image_folder(train_root, "FT_TRAIN_DATA")
    evaluation = data.scan_image_folder(eval_root, "FT_EVAL_DATA")
    classes = data.check_classes(train, evaluation, settings.num_classes)
    if train.size < settings.batch_size:
        raise BadInput(f"FT_TRAIN_DATA has {train.size} images, fewer than FT_BATCH_SIZE={settings.batch_size}; "
                       f"lower the batch size or add images")
    data.check_images_readable(train, "FT_TRAIN_DATA", workers)
    data.check_images_readable(evaluation, "FT_EVAL_DATA", workers)
    return train, evaluation, classes, {"FT_TRAIN_DATA": train_print, "FT_EVAL_DATA": eval_print}


def _hub_backbone(settings: Settings) -> nn.Cell:
    return hub.load(settings.model, include_top=False, mirror=settings.hub_mirror, cache_dir=settings.hub_cache,
                    offline=settings.hub_offline, network_dir=settings.hub_network_dir,
                    storage_options=settings.storage_options())


def _is_eval_epoch(epoch: int, settings: Settings) -> bool:
    return epoch == settings.epochs or (settings.eval_every > 0 and epoch % settings.eval_every == 0)


def _best(history: list[dict]) -> dict | None:
    epoch = best_epoch([(record["epoch"], record["eval"].get("top1")) for record in history])
    return next(record for record in history if record["epoch"] == epoch) if epoch is not None else None


class Run:
    """The state shared by the phases of one run."""

    def __init__(self, settings: Settings, progress: Progress, store: Store, scratch: Path) -> None:
        self.settings = settings
        self.progress = progress
        self.store = store
        self.scratch = scratch
        self.attempt = new_attempt_id()
        self.log = CheckpointLog(store, self.attempt)

    def resume(self, trainer: Trainer) -> list[dict]:
        """Restore the newest verified committed epoch, if any; returns the history up to it."""
        removed = self.log.collect_garbage(self.settings.gc_min_age_seconds)
        if removed:
            self.progress.emit("garbage_collected", objects=removed)
        restored = self.log.latest_verified(self.scratch, lambda epoch, problem: self.progress.emit(
            "checkpoint_skipped", epoch=epoch, problem=problem))
        if restored is None:
            return []
        trainer.restore(restored.files[STATE_FILE])
        shutil.rmtree(restored.files[STATE_FILE].parent, ignore_errors=True)
        self.progress.emit("resumed", epoch=restored.manifest.epoch, attempt=restored.manifest.attempt)
        return list(restored.manifest.state["history"])

    def train(self, trainer: Trainer, network: nn.Cell, folders, classes: list[str], history: list[dict],
              committer: BackgroundCommitter, stop_requested: threading.Event) -> dict:
        """Train the remaining epochs, handing each to the committer; returns the last eval metrics."""
        settings = self.settings
        workers = data.worker_count(settings.num_workers)
        shared = dict(image_size=settings.image_size, workers=workers, augment=settings.augment,
                      hflip=settings.hflip, crop_min_scale=settings.crop_min_scale, batch_size=settings.batch_size)
        eval_set = data.build_dataset(folders[1], classes, training=False, **shared)

        def stop() -> None:
            if committer.error is not None:
                raise committer.error
            if stop_requested.is_set():
                raise Terminated("stopped by SIGTERM; the next attempt resumes from the last committed epoch")

        final: dict = {}
        for epoch in range(len(history) + 1, settings.epochs + 1):
            ds.config.set_seed(settings.seed * EPOCH_SEED_STRIDE + epoch)
            train_set = data.build_dataset(folders[0], classes, training=True, **shared)
            record = trainer.train_epoch(epoch, train_set, self.progress, stop)
            if _is_eval_epoch(epoch, settings):
                final = classification_metrics(*predict(network, eval_set), classes)
                record.eval = {"top1": final["top1"], "top5": final["top5"]}
            history.append(asdict(record))
            self.progress.emit("epoch", **history[-1])
            folder = self.scratch / f"epoch-{epoch:06d}"
            trainer.save(folder / STATE_FILE)
            (folder / CLASSES_FILE).write_text(json.dumps(classes), encoding="utf-8")
            files = {STATE_FILE: folder / STATE_FILE, CLASSES_FILE: folder / CLASSES_FILE}
            state = {"history": list(history), "eval_top1": record.eval.get("top1"), "classes": classes}
            committer.submit(PendingCommit(epoch, files, state, folder))
        return final or classification_metrics(*predict(network, eval_set), classes)

    def flush(self, committer: BackgroundCommitter, stop_requested: threading.Event) -> None:
        """Wait for every commit (bounded by FT_FLUSH_TIMEOUT_SECONDS), or stop on SIGTERM."""
        deadline = time.monotonic() + self.settings.flush_timeout_seconds
        while not committer.flush(1.0):
            if committer.error is not None:
                raise committer.error
            if stop_requested.is_set():
                raise Terminated("stopped by SIGTERM while committing; the next attempt resumes from the last "
                                 "committed epoch")
            if time.monotonic() > deadline:
                raise Unavailable(f"{committer.pending()} checkpoints could not be committed to "
                                  f"{self.store.uri} within FT_FLUSH_TIMEOUT_SECONDS="
                                  f"{self.settings.flush_timeout_seconds:g}; the next attempt resumes from the "
                                  f"last committed epoch")

    def committed_checkpoint(self, epoch: int) -> str:
        """The key of a committed epoch's training state (it loads into the network: extra optimizer entries
        are ignored); retention always keeps the best epoch's."""
        manifest = next((m for m in self.log.manifests() if m.epoch == epoch), None)
        if manifest is None:
            raise Unavailable(f"the manifest of epoch {epoch} is missing from {self.store.uri}; retry later")
        return next(entry["key"] for entry in manifest.files if entry["name"] == STATE_FILE)

    def prepare_results(self, network: nn.Cell, classes: list[str], history: list[dict],
                        final: dict) -> ResultWriter:
        """Write and start uploading the result files that need no stored checkpoint, while the last
        commits finish."""
        writer = ResultWriter(self.store, self.attempt, self.scratch / "results", self.settings.flush_timeout_seconds)
        writer.add_json("classes", "classes.json", classes)
        plot_training_curves(history, writer.local("training_curves", "plots/training_curves.png"))
        writer.upload("training_curves")
        plot_confusion_matrix(final["confusion_matrix"], classes,
                              writer.local("confusion_matrix", "plots/confusion_matrix.png"))
        writer.upload("confusion_matrix")
        if self.settings.export_mindir:
            export_mindir(network, self.settings.image_size, writer.local("mindir", "model.mindir"))
            writer.upload("mindir")
        return writer

    def commit_results(self, writer: ResultWriter, classes: list[str], history: list[dict], final: dict,
                       started: float) -> dict:
        """Once every epoch is committed: point at the best epoch's checkpoint, write metrics.json."""
        settings = self.settings
        best = _best(history) or {"epoch": history[-1]["epoch"], "eval": {"top1": None}}
        writer.artefacts["best_checkpoint"] = self.committed_checkpoint(best["epoch"])
        summary = {"top1": final["top1"], "top5": final["top5"], "best_top1": best["eval"]["top1"],
                   "best_epoch": best["epoch"], "epochs": settings.epochs,
                   "seconds": round(time.perf_counter() - started, 1),
                   "metrics": f"{self.store.uri}/{run_record.METRICS_KEY}"}
        writer.commit({"summary": summary, "final": final, "history": history, "classes": classes,
                       "settings": settings.model_dump(mode="json")})
        return summary


def run(settings: Settings, progress: Progress, backbone: nn.Cell | None = None) -> dict:
    """Fine-tune and evaluate, resuming what FT_OUTPUT holds; returns the summary printed as the last line.

    `backbone` replaces the hub backbone (for pretraining a hub entry from scratch).
    """
    started = time.perf_counter()
    store = open_store(settings.output, settings.storage_options())
    store.check_access()
    train_folder, eval_folder, classes, fingerprints = _image_sets(settings, data.worker_count(settings.num_workers))
    finished = run_record.completed_summary(store)
    if finished is not None:
        run_record.claim(store, settings, classes, fingerprints)  # only the same run counts as finished
        progress.emit("already_complete", metrics=finished["metrics"])
        return finished
    configure(settings)
    network = fine_tune_network(backbone or _hub_backbone(settings), len(classes), settings.freeze_backbone)
    # Claimed once everything that can be wrong with the input was checked: a mistyped FT_MODEL or a broken
    # hub entry leaves nothing behind in FT_OUTPUT, so the corrected run can use the same location.
    run_record.claim(store, settings, classes, fingerprints)
    trainer = Trainer(network, settings, train_folder.size // settings.batch_size)
    scratch = Path(tempfile.mkdtemp(prefix="ft-run-", dir=settings.scratch_dir))
    try:
        current = Run(settings, progress, store, scratch)
        with termination_requested() as stop_requested:
            history = current.resume(trainer)
            progress.emit("start", model=settings.model, classes=len(classes), train_images=train_folder.size,
                          eval_images=eval_folder.size, device=settings.device_target.value,
                          first_epoch=len(history) + 1, epochs=settings.epochs, attempt=current.attempt)
            committer = BackgroundCommitter(current.log, progress, settings.keep_checkpoints)
            try:
                final = current.train(trainer, network, (train_folder, eval_folder), classes, history, committer,
                                      stop_requested)
                writer = current.prepare_results(network, classes, history, final)
                try:
                    current.flush(committer, stop_requested)
                    return current.commit_results(writer, classes, history, final, started)
                finally:
                    writer.abandon()
            except Terminated:
                done = committer.flush(settings.term_grace_seconds)
                progress.emit("terminated", pending_commits_written=done)
                raise
            finally:
                committer.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
