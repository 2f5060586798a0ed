"""One fine-tuning run from settings to committed results, resuming from the newest verified checkpoint."""

from __future__ import annotations

import json
import math
import shutil
import signal
import tarfile
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from functools import partial
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import mindspore as ms
import mindspore.dataset as ds
import numpy as np
from mindspore import nn

from job import data, features, feeds, hub, run_record
from job.compile_cache import ARCHIVE, CompileCache, configuration_key, disable as compile_uncached
from job.distributed import Topology, device_index, join
from job.checkpoints import CheckpointLog, Restored, best_epoch, new_attempt_id
from job.committer import BackgroundCommitter, PendingCommit
from contract.settings import Settings
from job.data_source import materialize
from job.early_stop import Patience, observe
from job.device import configure
from job.errors import Terminated, Unavailable
from job.preflight import check_directories, hub_descriptor, with_image_size
from job.evaluate import classification_metrics, predict, softmax
from job.feeds import Feed
from job.export import MODEL_CHECKPOINT, MODEL_JSON, MODEL_MINDIR, export_mindir, model_description
from job.export import write_model_description
from job.progress import Progress
from job.publishing import check_publishable, publish_finished
from job.readable import check_images_readable
from job.report import plot_confusion_matrix, plot_training_curves
from job.report_page import Misclassified, worst_misclassified, write_report
from job.results import ResultWriter, collect_abandoned
from job.storage import Store, StorageOptions, open_store
from job.train import EpochRecord, Trainer, fine_tune_network, write_checkpoint
from job.tracking.session import Tracking
from job.tracking.tensorboard import EVENT_DIR, restore_event_files

STATE_FILE = "train_state.ckpt"
BEST_FILE = "best_epoch.ckpt"  # the best epoch's committed state, fetched when an earlier attempt trained it
CLASSES_FILE = "classes.json"  # committed next to every checkpoint, so each is usable on its own
EPOCH_SEED_STRIDE = 100_003  # the data order of epoch e depends only on (FT_SEED, e): a resumed run repeats it


@contextmanager
def termination_requested(honoured: bool = True) -> Iterator[threading.Event]:
    """An event set by SIGTERM (what Kubernetes sends before killing a pod) while the block runs.

    Not `honoured` (ranks other than 0), SIGTERM is ignored: those ranks keep in step until rank 0 has stopped
    and committed, and msrun then ends them.
    """
    event = threading.Event()
    previous = signal.signal(signal.SIGTERM, (lambda *_: event.set()) if honoured else signal.SIG_IGN)
    try:
        yield event
    finally:
        signal.signal(signal.SIGTERM, previous)


def _image_sets(settings: Settings, workers: int) -> tuple[data.ImageFolder, data.ImageFolder, list[str], dict]:
    options = StorageOptions.from_settings(settings)
    train_root, train_print = materialize(settings.train_data, "FT_TRAIN_DATA", settings.data_cache, options)
    eval_root, eval_print = materialize(settings.eval_data, "FT_EVAL_DATA", settings.data_cache, options)
    train = data.scan_image_folder(train_root, "FT_TRAIN_DATA")
    evaluation = data.scan_image_folder(eval_root, "FT_EVAL_DATA")
    classes = data.check_image_sets(train, evaluation, settings.num_classes, settings.batch_size)
    check_images_readable(train, "FT_TRAIN_DATA", workers, settings.data_cache)
    check_images_readable(evaluation, "FT_EVAL_DATA", workers, settings.data_cache)
    return train, evaluation, classes, {"FT_TRAIN_DATA": train_print, "FT_EVAL_DATA": eval_print}


def _hub_backbone(settings: Settings) -> nn.Cell:
    return hub.load(
        settings.model,
        include_top=False,
        mirror=settings.hub_mirror,
        cache_dir=settings.hub_cache,
        offline=settings.hub_offline,
        network_dir=settings.hub_network_dir,
        storage_options=StorageOptions.from_settings(settings),
    )


@dataclass(frozen=True)
class Evaluation:
    """One evaluation pass: the epoch whose weights were evaluated, each image's logits and its label."""

    epoch: int
    logits: np.ndarray
    labels: np.ndarray


def _network_parameters(snapshot: list[dict], network: nn.Cell) -> dict[str, ms.Parameter]:
    """The network's parameters from a Trainer.snapshot (host copies already), loadable into it later."""
    names = {parameter.name for parameter in network.get_parameters()}
    return {
        entry["name"]: ms.Parameter(entry["data"], name=entry["name"]) for entry in snapshot if entry["name"] in names
    }


def _is_eval_epoch(epoch: int, settings: Settings) -> bool:
    return epoch == settings.epochs or (settings.eval_every > 0 and epoch % settings.eval_every == 0)


def _best(history: list[dict]) -> dict | None:
    epoch = best_epoch([(record["epoch"], record["eval"].get("top1")) for record in history])
    return next(record for record in history if record["epoch"] == epoch) if epoch is not None else None


class Run:
    """The state shared by the phases of one run."""

    def __init__(
        self,
        settings: Settings,
        progress: Progress,
        store: Store,
        scratch: Path,
        topology: Topology,
        compile_cache: CompileCache | None,
    ) -> None:
        assert settings.image_size is not None, "run() decides FT_IMAGE_SIZE before the run starts"
        self.settings = settings
        self.compile_cache = compile_cache
        self.image_size: int = settings.image_size
        self.progress = progress
        self.store = store
        self.scratch = scratch
        self.topology = topology
        self.attempt = new_attempt_id()
        self.log = CheckpointLog(store, self.attempt)
        self.patience = Patience()
        self.tracking: Tracking | None = None
        self.last_eval: Evaluation | None = None
        self.best_state: tuple[int, dict[str, ms.Parameter]] | None = None  # kept while its commit may be pending
        self.evaluated: tuple[nn.Cell, Any] | None = None  # (the cell evaluated, the evaluation set)

    def open_tracking(self, steps_per_epoch: int, epochs_done: int) -> Tracking:
        """Rank 0's trackers, once resumed: TensorBoard then purges what a killed attempt wrote past epoch
        `epochs_done`."""
        self.tracking = Tracking(
            self.settings, self.progress, self.store.uri, self.scratch, steps_per_epoch, epochs_done, self.attempt
        )
        return self.tracking

    @property
    def watches_patience(self) -> bool:
        """Whether early stopping can end this run (every rank decides the same from the settings)."""
        return self.settings.early_stop_patience > 0

    def agree_to_stop(self, stopped: bool) -> bool:
        """Rank 0's early-stopping decision, on every rank (a broadcast only when early stopping is on)."""
        return bool(self.topology.broadcast_int(int(stopped))) if self.watches_patience else False

    def resume(self, trainer: Trainer) -> list[dict]:
        """Restore the newest verified committed epoch, if any; returns the history up to it.

        Distributed, rank 0 restores and every rank takes its parameters; the others' history is a
        placeholder of the right length (only rank 0 reports and commits)."""
        history = self._restore(trainer) if self.topology.is_primary else []
        completed = self.topology.broadcast_int(len(history))
        if self.agree_to_stop(self.patience.stopped):  # stopped early before this attempt: no epoch is left
            completed = self.settings.epochs
        if completed >= self.settings.epochs and self.compile_cache is not None:
            self.compile_cache.stop()  # only the evaluation is left: its graphs would not come in cached order
        self.topology.broadcast_parameters(trainer.step)  # the freshly initialised head differs per rank
        return history or [{"epoch": epoch} for epoch in range(1, completed + 1)]

    def _restore(self, trainer: Trainer) -> list[dict]:
        removed = self.log.collect_garbage(self.settings.gc_min_age_seconds) + collect_abandoned(
            self.store, self.settings.gc_min_age_seconds
        )
        if removed:
            self.progress.emit("garbage_collected", objects=removed)
        restored = self.log.latest_verified(
            self.scratch, lambda epoch, problem: self.progress.emit("checkpoint_skipped", epoch=epoch, problem=problem)
        )
        if restored is None:
            return []
        trainer.restore(restored.files[STATE_FILE])
        self.patience = Patience.from_state(restored.manifest.state.get("early_stop"))
        self._unpack_compile_cache(restored)
        restore_event_files(restored.files, self.scratch / EVENT_DIR)
        shutil.rmtree(restored.files[STATE_FILE].parent, ignore_errors=True)
        self.progress.emit("resumed", epoch=restored.manifest.epoch, attempt=restored.manifest.attempt)
        return list(restored.manifest.state["history"])

    def _unpack_compile_cache(self, restored: Restored) -> None:
        """The graphs the restored checkpoint carries, when they are this configuration's and none are here; an
        archive that cannot be unpacked only costs the compilation."""
        cache = self.compile_cache
        if cache is None or ARCHIVE not in restored.files:
            return
        if restored.manifest.state.get("compile_cache_key") != cache.key:
            return
        try:
            unpacked = cache.unpack(restored.files[ARCHIVE])
        except (tarfile.TarError, OSError) as exc:
            self.progress.emit("compile_cache_unusable", epoch=restored.manifest.epoch, problem=str(exc))
            return
        if unpacked:
            self.progress.emit("compile_cache_restored", epoch=restored.manifest.epoch, key=cache.key)

    def _prepare(
        self, trainer: Trainer, network: nn.Cell, folders, classes: list[str], done: int, stop: Callable[[], None]
    ) -> tuple[Feed, nn.Cell, Any]:
        """(the training feed, the cell evaluated, the evaluation set).

        When job.features applies, the backbone runs once over both image sets, and the epochs train and evaluate
        the classifier alone on the cached features."""
        settings, topology = self.settings, self.topology
        shared: dict[str, Any] = dict(
            image_size=self.image_size,
            workers=data.worker_count(settings.num_workers, settings.devices_per_worker),
            augment=settings.augment,
            hflip=settings.hflip,
            crop_min_scale=settings.crop_min_scale,
        )
        shard = (topology.size, topology.rank) if topology.is_distributed else None
        per_device_batch = settings.batch_size // topology.size
        eval_set = data.build_dataset(folders[1], classes, training=False, batch_size=settings.batch_size, **shared)
        evaluated: nn.Cell = network
        if done < settings.epochs and features.applies(settings, topology):
            in_order = data.build_dataset(folders[0], classes, training=False, batch_size=settings.batch_size, **shared)
            cached = features.cache(
                network,
                in_order,
                eval_set,
                (folders[0].size, folders[1].size),
                self.scratch / "features",
                self.progress,
                stop,
            )
            trainer.train_on_features()
            training_set = partial(cached.train.dataset, training=True, batch_size=per_device_batch)
            evaluated = network.head.dense_layer()
            eval_set = cached.eval.dataset(training=False, batch_size=settings.batch_size)
        else:
            training = dict(training=True, batch_size=per_device_batch, shard=shard, **shared)
            training_set = partial(data.build_dataset, folders[0], classes, **training)

        def epoch_set(epoch: int):
            """Epoch e's data order depends only on (FT_SEED, e), the same on every rank."""
            ds.config.set_seed(settings.seed * EPOCH_SEED_STRIDE + epoch)
            return training_set()

        feed = feeds.for_device(settings.device_target, epoch_set, done + 1, settings.batch_size, topology.size)
        return feed, evaluated, eval_set

    def _epochs_done(self, history: list[dict]) -> int:
        """Epochs already trained, or all of them once early stopping ended the run."""
        return self.settings.epochs if self.patience.stopped else len(history)

    def _epochs(
        self, trainer: Trainer, network: nn.Cell, feed: Feed, done: int, stop: Callable[[], None]
    ) -> Iterator[EpochRecord]:
        """Train the remaining epochs, yielding each record."""
        try:
            for epoch in range(done + 1, self.settings.epochs + 1):
                record = trainer.train_epoch(epoch, feed, self.progress, stop)
                self.topology.average_batch_statistics(network)
                yield record
        finally:
            feed.close()

    def replicate(self, trainer: Trainer, network: nn.Cell, folders, classes: list[str], history: list[dict]) -> dict:
        """A rank other than 0: train in step with the others (no evaluation, no commits); its parameters' digest.
        It ignores SIGTERM and has nothing to commit, so nothing stops it early: msrun ends it once rank 0 has."""

        def stop() -> None:
            return None

        done = self._epochs_done(history)
        feed, _, _ = self._prepare(trainer, network, folders, classes, done, stop)
        for _ in self._epochs(trainer, network, feed, done, stop):
            if self.agree_to_stop(False):
                break
        summary = {"rank": self.topology.rank, "parameters_sha256": self.topology.check_identical(network)}
        self.progress.emit("replica_done", **summary)
        return summary

    def train(
        self,
        trainer: Trainer,
        network: nn.Cell,
        folders,
        classes: list[str],
        history: list[dict],
        committer: BackgroundCommitter,
        stop_requested: threading.Event,
    ) -> dict:
        """Rank 0: train the remaining epochs, evaluate and hand each epoch to the committer; the last eval
        metrics."""
        settings = self.settings

        def stop() -> None:
            if committer.error is not None:
                raise committer.error
            if stop_requested.is_set():
                raise Terminated("stopped by SIGTERM; the next attempt resumes from the last committed epoch")

        done = self._epochs_done(history)
        feed, evaluated, eval_set = self._prepare(trainer, network, folders, classes, done, stop)
        self.evaluated = (evaluated, eval_set)
        final: dict = {}
        for record in self._epochs(trainer, network, feed, done, stop):
            if _is_eval_epoch(record.epoch, settings):
                final = self._evaluate(record.epoch, classes)
                record.eval = {key: final[key] for key in ("top1", "top5", "loss")}
                self.patience = observe(self.patience, record.epoch, record.eval, settings)
            history.append(asdict(record))
            snapshot = trainer.snapshot()  # the file is written by the committer while the next epoch trains
            if record.eval and _best(history) is history[-1]:
                self.best_state = (record.epoch, _network_parameters(snapshot, network))
            self.progress.emit("epoch", **history[-1])
            if self.patience.stopped:
                self.progress.emit("early_stop", epoch=record.epoch, reason=self.patience.reason)
            folder = self.scratch / f"epoch-{record.epoch:06d}"
            folder.mkdir(parents=True)
            (folder / CLASSES_FILE).write_text(json.dumps(classes), encoding="utf-8")
            files = {STATE_FILE: folder / STATE_FILE, CLASSES_FILE: folder / CLASSES_FILE}
            if self.tracking is not None:  # the event files so far travel with the epoch, as its history does
                files.update(self.tracking.event_files(folder))
            state = {
                "history": list(history),
                "eval_top1": record.eval.get("top1"),
                "classes": classes,
                "early_stop": self.patience.as_state(),
            }
            cache = self.compile_cache
            archive = cache.pack(self.scratch) if cache is not None else None
            if cache is not None and archive is not None:  # a resumed pod starts with this run's compiled graphs
                files[ARCHIVE] = archive
                state["compile_cache_key"] = cache.key
            write = partial(write_checkpoint, snapshot, folder / STATE_FILE)
            committer.submit(PendingCommit(record.epoch, files, state, folder, write))
            if self.agree_to_stop(self.patience.stopped):
                break
        return final or self._evaluate(history[-1]["epoch"], classes)

    def _evaluate(self, epoch: int, classes: list[str]) -> dict:
        """Evaluate the network as it stands (holding epoch `epoch`'s weights), remembering each image's logits."""
        assert self.evaluated is not None, "train() prepares the evaluation set first"
        logits, labels = predict(*self.evaluated)
        self.last_eval = Evaluation(epoch, logits, labels)
        return classification_metrics(logits, labels, classes)

    def load_epoch(self, network: nn.Cell, epoch: int) -> None:
        """Put epoch `epoch`'s weights into `network` (unless the last evaluation already saw them): kept in
        memory when this attempt trained it, else read from its committed checkpoint."""
        if self.last_eval is not None and self.last_eval.epoch == epoch:
            return
        if self.best_state is not None and self.best_state[0] == epoch:
            parameters = self.best_state[1]
        else:
            local = self.scratch / BEST_FILE
            self.store.get_file(self.committed_checkpoint(epoch), local)
            parameters = ms.load_checkpoint(str(local))
        ms.load_param_into_net(network, parameters, strict_load=True)

    def exported_evaluation(self, network: nn.Cell, epoch: int, classes: list[str]) -> Evaluation:
        """The evaluation of the best epoch's weights, now in `network` (run again unless it was the last)."""
        self.load_epoch(network, epoch)
        assert self.last_eval is not None, "train() evaluates at least once"
        if self.last_eval.epoch != epoch:
            self._evaluate(epoch, classes)
        return self.last_eval

    def flush(self, committer: BackgroundCommitter, stop_requested: threading.Event) -> None:
        """Wait for every commit (bounded by FT_FLUSH_TIMEOUT_SECONDS), or stop on SIGTERM."""
        deadline = time.monotonic() + self.settings.flush_timeout_seconds
        while not committer.flush(1.0):
            if committer.error is not None:
                raise committer.error
            if stop_requested.is_set():
                raise Terminated(
                    "stopped by SIGTERM while committing; the next attempt resumes from the last committed epoch"
                )
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"{committer.pending()} checkpoints could not be committed to "
                    f"{self.store.uri} within FT_FLUSH_TIMEOUT_SECONDS="
                    f"{self.settings.flush_timeout_seconds:g}; the next attempt resumes from the "
                    f"last committed epoch"
                )

    def committed_checkpoint(self, epoch: int) -> str:
        """The key of a committed epoch's training state (it loads into the network: extra optimizer entries
        are ignored); retention always keeps the best epoch's."""
        manifest = next((m for m in self.log.manifests() if m.epoch == epoch), None)
        if manifest is None:
            raise Unavailable(f"the manifest of epoch {epoch} is missing from {self.store.uri}; retry later")
        return next(entry["key"] for entry in manifest.files if entry["name"] == STATE_FILE)

    def prepare_results(
        self, network: nn.Cell, classes: list[str], history: list[dict], final: dict
    ) -> tuple[ResultWriter, Evaluation]:
        """Write and start uploading the result files that need no stored checkpoint, while the last commits
        finish: the plots, and the exported model (the best epoch's weights, now in `network`) with its
        evaluation."""
        writer = ResultWriter(self.store, self.attempt, self.scratch / "results", self.settings.flush_timeout_seconds)
        writer.add_json("classes", "classes.json", classes)
        plot_training_curves(history, writer.local("training_curves", "plots/training_curves.png"))
        writer.upload("training_curves")
        confusion_png = writer.local("confusion_matrix", "plots/confusion_matrix.png")
        plot_confusion_matrix(final["confusion_matrix"], classes, confusion_png)
        writer.upload("confusion_matrix")
        if self.tracking is not None:
            for name in self.tracking.final_event_files(confusion_png, writer.staging):
                writer.local(name, name)
                writer.upload(name)
        best = _best(history) or history[-1]
        exported = self.exported_evaluation(network, best["epoch"], classes)
        ms.save_checkpoint(network, str(writer.local("model_checkpoint", MODEL_CHECKPOINT)))
        writer.upload("model_checkpoint")
        top1 = best.get("eval", {}).get("top1")
        description = model_description(self.image_size, classes, self.settings.model, best["epoch"], top1)
        write_model_description(writer.local("model_json", MODEL_JSON), description)
        writer.upload("model_json")
        if self.settings.export_mindir:
            export_mindir(network, self.image_size, writer.local("mindir", MODEL_MINDIR))
            writer.upload("mindir")
        return writer, exported

    def commit_results(
        self,
        writer: ResultWriter,
        classes: list[str],
        history: list[dict],
        final: dict,
        exported: Evaluation,
        data_sets: dict[str, dict],
        started: float,
    ) -> dict:
        """Once every epoch is committed: point at the best epoch's checkpoint, write the report page, then
        metrics.json. `data_sets`: each image set's location, fingerprint and image paths (evaluation order)."""
        settings = self.settings
        best = _best(history) or {"epoch": history[-1]["epoch"], "eval": {"top1": None}}
        writer.artefacts["best_checkpoint"] = self.committed_checkpoint(best["epoch"])
        summary = {
            "top1": final["top1"],
            "top5": final["top5"],
            "best_top1": best["eval"]["top1"],
            "best_epoch": best["epoch"],
            "epochs": len(history),
            "seconds": round(time.perf_counter() - started, 1),
            "metrics": f"{self.store.uri}/{run_record.METRICS_KEY}",
        }
        document = {
            "summary": summary,
            "final": final,
            "exported": {
                "epoch": exported.epoch,
                "metrics": classification_metrics(exported.logits, exported.labels, classes),
            },
            "history": history,
            "early_stop": {**self.patience.as_state(), "patience": settings.early_stop_patience},
            "classes": classes,
            "settings": settings.model_dump(mode="json"),
            "data": {
                variable: {key: value for key, value in found.items() if key != "paths"}
                for variable, found in data_sets.items()
            },
        }
        gallery: list[Misclassified] = worst_misclassified(
            data_sets["FT_EVAL_DATA"]["paths"], softmax(exported.logits), exported.labels, classes
        )
        figures = {"training_curves": writer.staging / "plots" / "training_curves.png"}  # the matrix is a table
        write_report(writer.local("report", "report.html"), document, figures, gallery)
        writer.upload("report")
        metrics_copy = writer.commit(document)
        if self.tracking is not None:
            self.tracking.results(summary, {**writer.local_files(), "metrics": metrics_copy})
        return summary


def _steps_per_epoch(images: int, settings: Settings, topology: Topology) -> int:
    """Global batches per epoch: each rank's shard holds ceil(images / ranks), in whole per-device batches."""
    return math.ceil(images / topology.size) // (settings.batch_size // topology.size)


def _compile_cache(
    settings: Settings, num_classes: int, images: tuple[int, int], steps_per_epoch: int, topology: Topology
) -> CompileCache | None:
    """This run's compiled-graph cache, enabled before anything is compiled; None when FT_COMPILE_CACHE is off or
    this process already cached another run."""
    if not settings.compile_cache:
        compile_uncached()
        return None
    key = configuration_key(settings, num_classes, images, steps_per_epoch, topology.size)
    cache = CompileCache(settings.compile_cache_dir, key, topology.rank)
    return cache if cache.enable() else None


def run(settings: Settings, progress: Progress, backbone: nn.Cell | None = None) -> dict:
    """Fine-tune and evaluate, resuming what FT_OUTPUT holds; returns the summary printed as the last line.

    `backbone` replaces the hub backbone (for pretraining a hub entry from scratch). Under msrun this runs on
    every rank; rank 0 alone reads and writes FT_OUTPUT.
    """
    started = time.perf_counter()
    check_directories(settings)
    configure(settings, device_index(settings))
    topology = join(settings)
    if topology.is_distributed:
        progress = progress.for_rank(topology.rank)
    store = open_store(settings.output, StorageOptions.from_settings(settings))
    if topology.is_primary:
        store.check_access()
        if settings.publish_to:
            check_publishable(settings)
    with topology.pod_leader_first():  # one copy of s3:// data per pod
        train_folder, eval_folder, classes, fingerprints = _image_sets(
            settings, data.worker_count(settings.num_workers, settings.devices_per_worker)
        )
    data_sets = {
        variable: {
            "location": location,
            "fingerprint": fingerprints[variable],
            "images": folder.size,
            "paths": [path for paths in folder.files.values() for path in paths],
        }
        for variable, location, folder in (
            ("FT_TRAIN_DATA", settings.train_data, train_folder),
            ("FT_EVAL_DATA", settings.eval_data, eval_folder),
        )
    }
    if settings.image_size is None:  # after the data checks, which need no hub
        with topology.pod_leader_first():  # one descriptor download per pod
            settings = with_image_size(settings, None if backbone is not None else hub_descriptor(settings))
    finished = run_record.completed_summary(store) if topology.is_primary else None
    if topology.broadcast_int(finished is not None):
        if finished is None:
            return {"rank": topology.rank, "already_complete": True}
        run_record.claim(store, settings, classes, fingerprints)  # only the same run counts as finished
        progress.emit("already_complete", metrics=finished["metrics"])
        return finished
    steps_per_epoch = _steps_per_epoch(train_folder.size, settings, topology)
    images = (train_folder.size, eval_folder.size)
    compile_cache = _compile_cache(settings, len(classes), images, steps_per_epoch, topology)
    with topology.pod_leader_first():  # one hub download per pod
        network = fine_tune_network(backbone or _hub_backbone(settings), len(classes), settings.freeze_backbone)
    # Claimed once everything that can be wrong with the input was checked: a mistyped FT_MODEL or a broken
    # hub entry leaves nothing behind in FT_OUTPUT, so the corrected run can use the same location.
    if topology.is_primary:
        run_record.claim(store, settings, classes, fingerprints)
    trainer = Trainer(network, settings, steps_per_epoch, topology.size)
    folders = (train_folder, eval_folder)
    with ExitStack() as cleanup:  # unwound in reverse: commits stopped, SIGTERM handler restored, scratch removed
        scratch = Path(
            cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="ft-run-", dir=settings.scratch_dir, ignore_cleanup_errors=True)
            )
        )
        current = Run(settings, progress, store, scratch, topology, compile_cache)
        stop_requested = cleanup.enter_context(termination_requested(honoured=topology.is_primary))
        history = current.resume(trainer)
        progress.emit(
            "start",
            model=settings.model,
            classes=len(classes),
            train_images=train_folder.size,
            eval_images=eval_folder.size,
            device=settings.device_target.value,
            processes=topology.size,
            first_epoch=len(history) + 1,
            epochs=settings.epochs,
            steps_per_epoch=trainer.steps_per_epoch,
            compile_cache=compile_cache.state if compile_cache is not None else "off",
            attempt=current.attempt,
        )
        if not topology.is_primary:
            return current.replicate(trainer, network, folders, classes, history)
        committer = cleanup.enter_context(BackgroundCommitter(current.log, progress, settings.keep_checkpoints))
        cleanup.enter_context(current.open_tracking(trainer.steps_per_epoch, len(history)))
        try:
            final = current.train(trainer, network, folders, classes, history, committer, stop_requested)
            digest = topology.check_identical(network)
            writer, exported = current.prepare_results(network, classes, history, final)
            with writer:
                current.flush(committer, stop_requested)
                summary = current.commit_results(writer, classes, history, final, exported, data_sets, started)
            if settings.publish_to:
                publish_finished(settings, summary, progress)
            return {**summary, **({"parameters_sha256": digest} if topology.is_distributed else {})}
        except Terminated:
            progress.emit("terminated", pending_commits_written=committer.flush(settings.term_grace_seconds))
            raise
