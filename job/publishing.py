"""A finished run as a hub entry: `python -m job publish OUTPUT --hub ROOT --id owner/version/name`, or
FT_PUBLISH_TO at the end of a run that meets FT_PUBLISH_REQUIRE. The entry is in the hub's own descriptor format
(so FT_MODEL=owner/version/name with FT_HUB_MIRROR=ROOT fine-tunes from it again) with a model card beneath."""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import re
import tempfile
from pathlib import Path

from contract.commands import StorageSettings
from contract.results import parse_bar, unmet_bars
from contract.settings import HUB_ENTRY_ID, Settings, env_name, known_variables
from job import hub
from job.config import CommandParser, from_environment
from job.errors import BadInput
from job.hub.descriptor import Descriptor
from job.hub.publish import publish_entry, refuse_existing
from job.models import zoo_branch
from job.progress import Progress
from job.run_record import finished_metrics
from job.report_page import per_class_rows
from job.storage import StorageOptions, open_store

COMMAND = "python -m job publish"
FIGURES = ("training_curves", "confusion_matrix")


def _source(settings: dict, options: StorageOptions) -> Descriptor:
    """The descriptor of the hub entry the run fine-tuned (its network's name and zoo layout carry over)."""
    return hub.resolve(
        settings["model"], pretrained=False, mirror=settings["hub_mirror"], storage_options=options
    ).descriptor


def _fields(model_id: str, metrics: dict, source: Descriptor) -> dict[str, object]:
    """The descriptor's front matter, in the hub's own field names, plus what this run adds."""
    owner, version, _ = model_id.split("/")
    exported = metrics["exported"]
    top1 = exported["metrics"]["top1"]
    settings = metrics["settings"]
    train = metrics["data"]["FT_TRAIN_DATA"]
    branch = zoo_branch(source.repo_link, source.fields)
    fields: dict[str, object] = {
        "backbone-name": source.fields.get("backbone-name", source.model_name),
        "module-type": source.fields.get("module-type", "cv"),
        "fine-tunable": True,
        "model-version": version,
        "train-dataset": train["location"],
        "train-dataset-fingerprint": train["fingerprint"],
        "train-images": train["images"],
        "evaluation": f"acc{top1 * 100:.2f}",
        "evaluation-detail": {
            "top1": top1,
            "top5": exported["metrics"]["top5"],
            "loss": exported["metrics"]["loss"],
            "images": exported["metrics"]["images"],
            "epoch": exported["epoch"],
            "eval-dataset-fingerprint": metrics["data"]["FT_EVAL_DATA"]["fingerprint"],
        },
        "num-classes": len(metrics["classes"]),
        "classes": metrics["classes"],
        "author": owner,
        "update-time": datetime.date.today().isoformat(),
        "repo-link": f"<{source.repo_link}>" if source.repo_link else "",
        **({"zoo-branch": branch} if branch else {}),
        "fine-tuned-from": settings["model"],
        "user-id": owner,
        "used-for": "inference, fine-tuning",
        "mindspore-version": importlib.metadata.version("mindspore"),
        "license": source.fields.get("license", ""),
        "summary": f"{source.model_name} fine-tuned for {len(metrics['classes'])} classes",
        "settings": settings,
    }
    return {key: value for key, value in fields.items() if value != ""}  # the source may have no link or licence


def model_card(model_id: str, hub_root: str, metrics: dict, figures: dict[str, str]) -> str:
    """The markdown under the front matter: what the model is, how well it does per class, the figures, usage."""
    exported, classes = metrics["exported"], metrics["classes"]
    found = exported["metrics"]
    rows = "\n".join(
        f"| {row['class']} | {row['support']} | {row['precision'] or 0:.3f} | {row['recall'] or 0:.3f} |"
        for row in per_class_rows(found["confusion_matrix"], classes)
    )
    pictures = "\n\n".join(f"![{label.replace('_', ' ')}]({name})" for label, name in figures.items())
    train = metrics["data"]["FT_TRAIN_DATA"]
    return f"""
## Introduction

{metrics["settings"]["model"]} fine-tuned on {train["images"]} images of {len(classes)} classes
(`{train["location"]}`, fingerprint `{train["fingerprint"]}`). The checkpoint is epoch {exported["epoch"]}, the best
evaluated one.

## Evaluation

top-1 {found["top1"]:.4f}, top-5 {found["top5"]:.4f}, loss {found["loss"]:.4f} on {found["images"]} images.

| class | images | precision | recall |
|---|---|---|---|
{rows}

{pictures}

## Usage

Fine-tune it again (the checkpoint is verified by its sha256):

```sh
FT_MODEL={model_id} FT_HUB_MIRROR={hub_root} FT_TRAIN_DATA=... FT_EVAL_DATA=... FT_OUTPUT=... python -m job
```
"""


def publish_run(output: str, hub_root: str, model_id: str, bars: list[str], options: StorageOptions) -> dict:
    """Publish the finished run at `output` as `model_id` of the hub at `hub_root` if it meets `bars`; returns
    what was done. BadInput (nothing written) for an unfinished run, an existing id or an unmet bar."""
    if not re.match(HUB_ENTRY_ID, model_id):
        raise BadInput(f"hub id {model_id!r}: use owner/version/name, e.g. team/1.0/flowers_googlenet")
    run_store = open_store(output, options)
    metrics = finished_metrics(run_store, run_store.uri, "publish a run's FT_OUTPUT once it has ended")
    unmet = unmet_bars(metrics["summary"], bars)
    if unmet:
        raise BadInput(f"the run at {output} is not published: {'; '.join(unmet)}")
    hub_store = open_store(hub_root, options)
    hub_store.check_access()
    refuse_existing(hub_store, model_id)
    source = _source(metrics["settings"], options)
    name = model_id.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="publish-") as scratch:
        local = Path(scratch)
        checkpoint = local / "model.ckpt"
        run_store.get_file(metrics["artefacts"]["model_checkpoint"], checkpoint)
        beside = {}
        for label in FIGURES:
            if label in metrics["artefacts"]:
                beside[f"{name}.{label}.png"] = local / f"{label}.png"
                run_store.get_file(metrics["artefacts"][label], beside[f"{name}.{label}.png"])
        card = model_card(model_id, hub_root, metrics, {label: f"{name}.{label}.png" for label in FIGURES})
        location = publish_entry(
            hub_store, model_id, source.model_name, checkpoint, _fields(model_id, metrics, source), card, beside
        )
    return {"published": model_id, "descriptor": location, "epoch": metrics["exported"]["epoch"]}


def check_publishable(settings: Settings) -> None:
    """Before training: FT_PUBLISH_TO answers and has no entry FT_PUBLISH_ID (hours are not spent to be refused)."""
    assert settings.publish_to and settings.publish_id, "the settings require FT_PUBLISH_ID with FT_PUBLISH_TO"
    store = open_store(settings.publish_to, StorageOptions.from_settings(settings))
    store.check_access()
    refuse_existing(store, settings.publish_id)


def publish_finished(settings: Settings, summary: dict, progress: Progress) -> dict:
    """At the end of a run with FT_PUBLISH_TO: publish it when it meets FT_PUBLISH_REQUIRE, else say why not."""
    assert settings.publish_to and settings.publish_id, "the settings require FT_PUBLISH_ID with FT_PUBLISH_TO"
    unmet = unmet_bars(summary, settings.publish_bars)
    if unmet:
        progress.emit("publish_skipped", id=settings.publish_id, unmet=unmet)
        return {"published": None}
    done = publish_run(
        settings.output, settings.publish_to, settings.publish_id, [], StorageOptions.from_settings(settings)
    )
    progress.emit("published", **done)
    return done


def _parser() -> argparse.ArgumentParser:
    found = CommandParser(
        prog=COMMAND,
        description="Publish a finished run as a hub entry (descriptor, checkpoint with its sha256, model card). "
        "FT_S3_* and FT_SCRATCH_DIR apply as for training.",
    )
    found.add_argument("output", help="the run's FT_OUTPUT (a local directory or s3:// prefix)")
    found.add_argument("--hub", required=True, help="the hub root: a local directory or s3:// prefix")
    found.add_argument("--id", required=True, dest="model_id", help="the entry's id, owner/version/name")
    found.add_argument(
        "--require", action="append", default=[], help="a bar the run must meet, e.g. top1>=0.9 (repeatable)"
    )
    return found


def publish_command(argv: list[str]) -> dict:
    """`python -m job publish`: the options, the storage settings from FT_* variables, then publish_run."""
    given = _parser().parse_args(argv)
    for bar in given.require:
        try:
            parse_bar(bar)
        except ValueError as exc:
            raise BadInput(f"{COMMAND}: --require {exc}") from None
    # a publishing Job may carry the run's settings: every variable of the job is known
    storage = from_environment(StorageSettings, os.environ, env_name, set(known_variables()), COMMAND)
    return publish_run(given.output, given.hub, given.model_id, given.require, StorageOptions.from_settings(storage))
