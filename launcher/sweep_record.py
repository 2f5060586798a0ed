"""The record of a local sweep, `.launcher/sweeps/<id>.json`: its trials with their overrides, outputs and
states, so that `sweep status --local` finds it and a restart knows the id is its own."""

from __future__ import annotations

import json
from pathlib import Path

from launcher.errors import SpecError
from launcher.sweep import Sweep

RECORDS = Path(".launcher") / "sweeps"


def record_path(name: str) -> Path:
    return RECORDS / f"{name}.json"


def read_record(name: str) -> dict:
    path = record_path(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(
            f"no local sweep {name} here ({path} does not exist); run launcher sweep SPEC --local in this directory"
        ) from None
    except (OSError, ValueError) as exc:
        raise SpecError(
            f"the local sweep record {path} cannot be read ({exc}); delete it and run the sweep again"
        ) from None


def check_record(sweep: Sweep) -> None:
    """A record of the same id must hold the same trials (overrides and outputs): else the id is another
    sweep's."""
    if not record_path(sweep.name).exists():
        return
    recorded = [(trial["overrides"], trial["output"]) for trial in read_record(sweep.name)["trials"]]
    if recorded != [(trial.overrides, trial.output) for trial in sweep.trials]:
        raise SpecError(
            f"the sweep id {sweep.name} is taken by a different local sweep ({record_path(sweep.name)} lists other "
            f"trials); pass another --name, or delete that file and its trials' outputs"
        )


def write_record(sweep: Sweep, states: dict[int, str]) -> None:
    """The sweep's trials and their states (pending until run)."""
    storage = sweep.trials[0].spec.storage
    document = {
        "sweep": sweep.name,
        "storage": {"endpoint": storage.endpoint, "region": storage.region},
        "trials": [
            {
                "trial": trial.number,
                "name": trial.name,
                "overrides": trial.overrides,
                "output": trial.output,
                "state": states.get(trial.number, "pending"),
            }
            for trial in sweep.trials
        ],
    }
    path = record_path(sweep.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".json.part")
    staged.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    staged.replace(path)
