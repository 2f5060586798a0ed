"""Background commits: training never waits for storage; one commit in flight; a storage outage is waited out."""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from job.checkpoints import CheckpointLog
from job.errors import JobError, Unavailable
from job.progress import Progress
from job.retry import while_unavailable

COMMITTER_NICENESS = 10  # uploads yield the CPU to training (Linux: per thread, inherited by upload threads)


@dataclass(frozen=True)
class PendingCommit:
    """One epoch's local files waiting to be committed; `folder` is removed once they are."""

    epoch: int
    files: dict[str, Path]
    state: dict
    folder: Path
    write: Callable[[], None] | None = None  # writes files that do not exist yet (the training state) first


class BackgroundCommitter:
    """Commits epochs in order on one thread; retries while storage is unavailable; keeps the newest N."""

    def __init__(self, log: CheckpointLog, progress: Progress, keep: int) -> None:
        self.log = log
        self.progress = progress
        self.keep = keep
        self.error: JobError | None = None  # a failure retrying cannot fix (another writer, bad credentials)
        self._queue: queue.Queue[PendingCommit | None] = queue.Queue()
        self._settled = threading.Condition()  # notified when a commit is done or has failed
        self._abandon = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoint-committer", daemon=True)
        self._thread.start()

    def __enter__(self) -> BackgroundCommitter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def submit(self, pending: PendingCommit) -> None:
        """Queue a commit. Its files are written on the committer's thread while training goes on, unless another
        commit already waits behind the one in flight (a slow or unavailable store): then here, so memory never
        holds more than one unwritten epoch."""
        if pending.write is not None and self._queue.qsize():
            pending.write()
            pending = replace(pending, write=None)
        self._queue.put(pending)

    def pending(self) -> int:
        return self._queue.unfinished_tasks

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every submitted commit; True when all are committed."""
        with self._settled:
            self._settled.wait_for(lambda: not self._queue.unfinished_tasks or self.error is not None, timeout)
        return not self._queue.unfinished_tasks and self.error is None

    def close(self) -> None:
        """Stop the thread; commits not yet done are abandoned (their uploads become garbage)."""
        self._abandon.set()
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COMMITTER_NICENESS)
        except (AttributeError, OSError):  # not Linux, or not allowed: commits still run, at normal priority
            pass
        while True:
            pending = self._queue.get()
            try:
                if pending is None or self._abandon.is_set() or self.error is not None:
                    if pending is None:
                        return
                    continue
                self._commit_with_retries(pending)
            finally:
                with self._settled:
                    self._queue.task_done()
                    self._settled.notify_all()

    def _commit_with_retries(self, pending: PendingCommit) -> None:
        def retrying(problem: Unavailable, delay: float) -> None:
            self.progress.emit("storage_retry", epoch=pending.epoch, retry_in_seconds=delay, problem=str(problem))

        started = time.perf_counter()
        try:
            if pending.write is not None:
                pending.write()
                pending = replace(pending, write=None)  # the snapshot it held is not needed any more
            while_unavailable(
                lambda: self.log.commit(pending.epoch, pending.files, pending.state), self._abandon, None, retrying
            )
        except Unavailable:  # abandoned while the store was away
            return
        except JobError as exc:
            self.error = exc
            return
        except Exception as exc:  # a local fault (disk full) or a bug: stop the run, do not hang it
            self.error = JobError(f"committing epoch {pending.epoch} failed unexpectedly ({type(exc).__name__}: {exc})")
            return
        shutil.rmtree(pending.folder, ignore_errors=True)
        self.progress.emit(
            "committed",
            epoch=pending.epoch,
            seconds=round(time.perf_counter() - started, 3),
            pending=self._queue.qsize(),
        )
        self._prune()

    def _prune(self) -> None:
        try:
            removed = self.log.retain(self.keep)
        except (Unavailable, OSError) as exc:  # retention is retried after the next commit
            self.progress.emit("retention_deferred", problem=str(exc))
            return
        if removed:
            self.progress.emit("retention", removed_epochs=removed)
