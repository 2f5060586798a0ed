"""Where predictions go (FT_PREDICT_TO): predictions.jsonl and predictions.csv, then summary.json written last by a
conditional put, so a destination that already holds predictions is refused and never overwritten."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from contract.predict import PREDICTION_SUMMARY, PREDICTIONS_CSV, PREDICTIONS_JSONL
from job.errors import BadInput, Conflict
from job.storage import StorageOptions, open_store
from job.storage.base import Store

VARIABLE = "FT_PREDICT_TO"


def open_destination(location: str, options: StorageOptions) -> Store:
    """The destination store, checked before any work: reachable, and holding no predictions yet."""
    store = open_store(location, options)
    store.check_access()
    taken = [
        info.key for info in store.list("") if info.key in (PREDICTION_SUMMARY, PREDICTIONS_JSONL, PREDICTIONS_CSV)
    ]
    if taken:
        raise BadInput(
            f"{VARIABLE}={location} already holds predictions ({', '.join(taken)}); choose a new location "
            f"(nothing is overwritten)"
        )
    return store


def rows(
    names: list[str], probabilities: np.ndarray, classes: list[str], top_k: int, labels: list[int] | None
) -> list[dict]:
    """One record per image: its path, the top-k labels with probabilities, and its true label when known."""
    k = min(top_k, len(classes))
    ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    found = []
    for position, name in enumerate(names):
        record: dict = {
            "path": name,
            "top_k": [
                {"label": classes[index], "probability": round(float(probabilities[position, index]), 6)}
                for index in ranked[position]
            ],
        }
        if labels is not None:
            record["label"] = classes[labels[position]]
        found.append(record)
    return found


def write_local(folder: Path, records: list[dict], unreadable: dict[str, str], top_k: int) -> tuple[Path, Path]:
    """predictions.jsonl and predictions.csv in `folder`; unreadable images are rows with an error."""
    failed = [{"path": name, "error": problem} for name, problem in unreadable.items()]
    jsonl = folder / PREDICTIONS_JSONL
    with jsonl.open("w", encoding="utf-8") as out:
        for record in [*records, *failed]:
            out.write(json.dumps(record) + "\n")
    table = folder / PREDICTIONS_CSV
    ranks = [f"{kind}_{rank}" for rank in range(1, top_k + 1) for kind in ("label", "probability")]
    with table.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, ["path", *ranks, "true_label", "error"])
        writer.writeheader()
        for record in records:
            ranked = {}
            for rank, entry in enumerate(record["top_k"], start=1):
                ranked[f"label_{rank}"] = entry["label"]
                ranked[f"probability_{rank}"] = entry["probability"]
            writer.writerow({"path": record["path"], **ranked, "true_label": record.get("label", "")})
        for record in failed:
            writer.writerow(record)
    return jsonl, table


def commit(store: Store, files: tuple[Path, Path], summary: dict) -> None:
    """Upload the predictions, then summary.json unless another prediction wrote one meanwhile."""
    for path in files:
        store.put_file(path.name, path)
    if not store.put_bytes_if_absent(PREDICTION_SUMMARY, (json.dumps(summary, indent=2) + "\n").encode()):
        raise Conflict(f"{store.uri}/{PREDICTION_SUMMARY} was written by another prediction in the meantime")
