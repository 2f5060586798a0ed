"""The run's final results in the output store, committed by metrics.json written last (never overwritten).

    results/<attempt>/best.ckpt        network parameters of the best epoch (model zoo names)
    results/<attempt>/classes.json     class names in label order, next to the checkpoint
    results/<attempt>/model.mindir     network + softmax for serving
    results/<attempt>/plots/*.png      training curves, confusion matrix
    metrics.json                       summary, final metrics, history, and the keys of the files above
"""

from __future__ import annotations

import json
from pathlib import Path

from job.errors import Conflict
from job.run_record import METRICS_KEY
from job.storage import Store

RESULTS = "results/"


class ResultWriter:
    """Uploads result files under this attempt's prefix, then commits them with metrics.json."""

    def __init__(self, store: Store, attempt: str, staging: Path) -> None:
        self.store = store
        self.prefix = f"{RESULTS}{attempt}/"
        self.staging = staging
        self.staging.mkdir(parents=True, exist_ok=True)
        self.artefacts: dict[str, str] = {}

    def local(self, name: str) -> Path:
        """Where to write result `name` before `add` uploads it."""
        path = self.staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, label: str, name: str) -> None:
        key = self.prefix + name
        self.store.put_file(key, self.local(name))
        self.artefacts[label] = key

    def add_json(self, label: str, name: str, document: object) -> None:
        self.local(name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        self.add(label, name)

    def commit(self, metrics: dict) -> None:
        document = {**metrics, "artefacts": self.artefacts}
        if not self.store.put_bytes_if_absent(METRICS_KEY, json.dumps(document, indent=2).encode()):
            raise Conflict(f"{self.store.uri}/{METRICS_KEY} was written by another run in the meantime; this "
                           f"run's results stay under {self.prefix} and are not committed")
