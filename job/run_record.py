"""The run an output location belongs to: written once (run.json), compared on every resume."""

from __future__ import annotations

import json

from contract.settings import Settings, env_name
from job.errors import BadInput
from job.storage import Store

RUN_KEY = "run.json"
METRICS_KEY = "metrics.json"
# Settings a resumed run must share with the run that wrote the checkpoints.
RESUME_FIELDS = (
    "model",
    "epochs",
    "batch_size",
    "image_size",
    "lr_init",
    "lr_max",
    "lr_end",
    "warmup_epochs",
    "momentum",
    "weight_decay",
    "freeze_backbone",
    "label_smoothing",
    "augment",
    "hflip",
    "crop_min_scale",
    "amp_level",
    "seed",
    "early_stop_patience",
    "early_stop_metric",
    "early_stop_min_delta",
)


def _record(settings: Settings, classes: list[str], fingerprints: dict[str, str]) -> dict:
    values = settings.model_dump(mode="json", include=set(RESUME_FIELDS))
    return {
        "classes": classes,
        "settings": {env_name(name): values[name] for name in RESUME_FIELDS},
        "data": fingerprints,
    }


def claim(store: Store, settings: Settings, classes: list[str], fingerprints: dict[str, str]) -> bool:
    """Record the run in an empty output, or check it matches the one recorded there.

    Returns True for a new run, False when resuming the same run; BadInput when the output belongs to another.
    """
    record = _record(settings, classes, fingerprints)
    if store.put_bytes_if_absent(RUN_KEY, json.dumps(record, indent=1).encode()):
        return True
    try:
        stored = json.loads(store.get_bytes(RUN_KEY))
    except ValueError:
        stored = None
    if not (isinstance(stored, dict) and all(isinstance(stored.get(part, {}), dict) for part in ("settings", "data"))):
        raise BadInput(f"{store.uri}/{RUN_KEY} is damaged; use a new FT_OUTPUT")
    differences = [
        f"{name} was {stored.get('settings', {}).get(name)!r}, now {value!r}"
        for name, value in record["settings"].items()
        if stored.get("settings", {}).get(name) != value
    ]
    if stored.get("classes") != classes:
        differences.append("the class list differs")
    differences += [
        f"{name} changed since the run started"
        for name, value in fingerprints.items()
        if stored.get("data", {}).get(name) != value
    ]
    if differences:
        raise BadInput(
            f"FT_OUTPUT={store.uri} holds another run ({'; '.join(differences)}); resuming needs the "
            f"same settings and data: restore them, or use a new FT_OUTPUT"
        )
    return False


def completed_summary(store: Store) -> dict | None:
    """The summary of a run that already finished in this output, if it did."""
    try:
        summary = json.loads(store.get_bytes(METRICS_KEY))["summary"]
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        summary = None
    if not isinstance(summary, dict):
        raise BadInput(f"{store.uri}/{METRICS_KEY} is damaged (no summary); use a new FT_OUTPUT")
    return summary


def finished_metrics(store: Store, where: str, fix: str, older_fix: str = "run it again") -> dict:
    """metrics.json of a finished run that exported its model (model.ckpt, model.json), for predicting with it or
    publishing it; BadInput naming `where` and what to do about a missing one (`fix`) or an older one."""
    try:
        metrics = json.loads(store.get_bytes(METRICS_KEY))
    except FileNotFoundError:
        raise BadInput(f"{where} holds no {METRICS_KEY}: not a finished run; {fix}") from None
    if "model_checkpoint" not in metrics.get("artefacts", {}):
        raise BadInput(
            f"{where} was written by an older version of the job, without the exported model (model.ckpt, "
            f"model.json); {older_fix}"
        )
    return metrics
