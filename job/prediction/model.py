"""The model a prediction uses: a finished run's best epoch (its checkpoint, rebuilt as the job builds its
network) or a MINDIR file, with the classes and input size of the model.json written beside either."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from job import hub
from job.errors import BadInput
from job.export import MODEL_JSON
from job.run_record import finished_metrics
from job.storage import StorageOptions, open_store, parent
from job.storage.base import Store

VARIABLE = "FT_PREDICT_RUN"


@dataclass(frozen=True)
class LoadedModel:
    """A network taking (N, 3, size, size) float32 images; `softmaxed`: it returns probabilities, not logits."""

    network: Any
    classes: list[str]
    image_size: int
    softmaxed: bool
    description: dict  # model.json
    source: str


def _fetch(store: Store, key: str, destination: Path, what: str) -> Path:
    try:
        store.get_file(key, destination)
    except FileNotFoundError:
        raise BadInput(
            f"{VARIABLE}: {store.uri}/{key} is missing, but {what}; the run's output is incomplete"
        ) from None
    return destination


def _from_run(location: str, options: StorageOptions, scratch: Path) -> LoadedModel:
    store = open_store(location, options)  # read only: a mistyped local location is not created
    metrics = finished_metrics(
        store,
        f"{VARIABLE}={location}",
        "point it at a run's FT_OUTPUT once the run has ended, or at a .mindir file",
        f"run it again, or point {VARIABLE} at its model.mindir",
    )
    artefacts = metrics["artefacts"]
    description = json.loads(
        _fetch(store, artefacts["model_json"], scratch / MODEL_JSON, "metrics.json lists it").read_text()
    )
    checkpoint = _fetch(store, artefacts["model_checkpoint"], scratch / "model.ckpt", "metrics.json lists it")
    settings = metrics["settings"]
    parameters = hub.read_checkpoint(checkpoint)
    from job.train import fine_tune_network

    backbone = hub.load(
        settings["model"],
        include_top=False,
        pretrained=False,
        mirror=settings["hub_mirror"],
        offline=settings["hub_offline"],
        network_dir=settings["hub_network_dir"],
        storage_options=options,
        layout_from=parameters,
    )
    network = fine_tune_network(backbone, len(description["classes"]), freeze_backbone=False)
    hub.load_checkpoint_into(network, checkpoint, parameters)
    return LoadedModel(network, description["classes"], description["input"]["shape"][-1], False, description, location)


def _from_mindir(location: str, options: StorageOptions, scratch: Path) -> LoadedModel:
    import mindspore as ms
    from mindspore import nn

    store = open_store(parent(location), options)
    name = location.rstrip("/").rsplit("/", 1)[-1]
    local = _fetch(store, name, scratch / name, "it was named")
    description = json.loads(
        _fetch(store, MODEL_JSON, scratch / MODEL_JSON, f"a MINDIR needs its {MODEL_JSON} beside it").read_text()
    )
    try:
        network = nn.GraphCell(ms.load(str(local)))
    except (RuntimeError, ValueError) as exc:
        raise BadInput(
            f"{VARIABLE}={location} cannot be loaded as MINDIR ({str(exc).strip().splitlines()[0]})"
        ) from exc
    return LoadedModel(network, description["classes"], description["input"]["shape"][-1], True, description, location)


def load_model(location: str, options: StorageOptions, scratch: Path) -> LoadedModel:
    """The model at FT_PREDICT_RUN: a .mindir file, or a finished run's output."""
    if location.rstrip("/").endswith(".mindir"):
        return _from_mindir(location.rstrip("/"), options, scratch)
    return _from_run(location, options, scratch)
