"""The run's final results in the output store, committed by metrics.json written last (never overwritten).

results/<attempt>/classes.json     class names in label order
results/<attempt>/model.mindir     network + softmax for serving
results/<attempt>/plots/*.png      training curves, confusion matrix
metrics.json                       summary, final metrics, history, and the keys of the files above and
                                   of the best epoch's committed checkpoint
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from job.errors import Conflict
from job.retry import while_unavailable
from job.run_record import METRICS_KEY
from job.storage import Store, delete_stale

RESULTS = "results/"
UPLOAD_THREADS = 4


def collect_abandoned(store: Store, min_age_seconds: float) -> int:
    """Delete result files (and stale multipart uploads) of attempts that died before metrics.json committed
    them, when older than `min_age_seconds` (a live writer's are younger); returns the count. Nothing is
    deleted once metrics.json exists, since it may name any of them."""
    try:
        store.get_bytes(METRICS_KEY)
    except FileNotFoundError:
        return delete_stale(store, RESULTS, min_age_seconds, keep=lambda key: False)
    return 0


class ResultWriter:
    """Result files are written locally, uploaded under this attempt's prefix as soon as each is ready (in
    parallel with the last checkpoint commits), and committed together by metrics.json."""

    def __init__(self, store: Store, attempt: str, staging: Path, retry_seconds: float) -> None:
        """`retry_seconds`: how long uploads keep retrying while the store is unavailable."""
        self.store = store
        self._deadline = time.monotonic() + retry_seconds
        self._stopped = threading.Event()
        self.prefix = f"{RESULTS}{attempt}/"
        self.staging = staging
        self.staging.mkdir(parents=True, exist_ok=True)
        self.artefacts: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="result-upload")
        self._uploads: list[Future] = []

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.abandon()

    def local(self, label: str, name: str) -> Path:
        """Where to write result `name`; call `upload(label)` once written. metrics.json lists it as `label`."""
        path = self.staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.artefacts[label] = self.prefix + name
        return path

    def upload(self, label: str) -> None:
        key = self.artefacts[label]
        self._uploads.append(self._pool.submit(self._put, key, self.staging / key[len(self.prefix) :]))

    def _put(self, key: str, path: Path) -> None:
        """Upload, waiting out a storage outage (as the checkpoint commits do) until the deadline."""
        while_unavailable(lambda: self.store.put_file(key, path), self._stopped, self._deadline)

    def add_json(self, label: str, name: str, document: object) -> None:
        self.local(label, name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        self.upload(label)

    def local_files(self) -> dict[str, Path]:
        """The result files written here: label -> local path (not `best_checkpoint`, a key in the store)."""
        return {
            label: self.staging / key[len(self.prefix) :]
            for label, key in self.artefacts.items()
            if key.startswith(self.prefix)
        }

    def commit(self, metrics: dict) -> Path:
        """Wait for every upload, then write metrics.json (conditionally: never over another run's); a local
        copy of what was written."""
        try:
            for upload in self._uploads:
                upload.result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        copy = self.staging / METRICS_KEY
        copy.write_text(json.dumps({**metrics, "artefacts": self.artefacts}, indent=2), encoding="utf-8")
        if not self.store.put_bytes_if_absent(METRICS_KEY, copy.read_bytes()):
            raise Conflict(
                f"{self.store.uri}/{METRICS_KEY} was written by another run in the meantime; this "
                f"run's results stay under {self.prefix} and are not committed"
            )
        return copy

    def abandon(self) -> None:
        self._stopped.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
