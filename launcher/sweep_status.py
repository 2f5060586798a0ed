"""A sweep's trials as leaderboard entries: from a run's outcomes, from the cluster (the sweep's Jobs by label,
their overrides and outputs from their annotations, their states from the Jobs) or from a local record, each
with its metrics.json."""

from __future__ import annotations

import json

from launcher.cluster import job_reports
from launcher.connection import Connection
from launcher.errors import ApiRefused
from launcher.gate import fetch_metrics
from launcher.leaderboard import Entry
from launcher.sweep import (
    OUTPUT_ANNOTATION,
    OVERRIDES_ANNOTATION,
    SWEEP_LABEL,
    TRIAL_LABEL,
    TRIALS_ANNOTATION,
    trial_name,
    trial_output,
)
from launcher.sweep_record import read_record
from launcher.sweep_run import STATES, Outcome


def outcome_entries(outcomes: list[Outcome]) -> list[Entry]:
    """The trials of a run that just ended."""
    entries = []
    for outcome in outcomes:
        trial, storage = outcome.trial, outcome.trial.spec.storage
        metrics = fetch_metrics(trial.output, storage.endpoint, storage.region)
        entries.append(Entry(trial.number, trial.name, outcome.state, trial.overrides, trial.output, metrics))
    return entries


def local_entries(name: str) -> list[Entry]:
    """The trials of a local sweep: succeeded once metrics.json exists, else the state the record kept."""
    record = read_record(name)
    storage = record.get("storage") or {}
    entries = []
    for trial in record["trials"]:
        metrics = fetch_metrics(trial["output"], storage.get("endpoint"), storage.get("region"))
        state = "succeeded" if metrics is not None else trial.get("state", "pending")
        if metrics is None and state == "succeeded":
            state = "missing"  # recorded as finished, but its output no longer holds metrics.json
        entries.append(Entry(trial["trial"], trial["name"], state, trial["overrides"], trial["output"], metrics))
    return entries


def _storage(job: dict) -> tuple[str | None, str | None]:
    """The S3 endpoint and region the trial's container was given."""
    containers = ((job.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
    environment = {
        item.get("name"): (item.get("value") or "").replace("$$", "$") for item in containers[0].get("env") or []
    }
    return environment.get("AWS_ENDPOINT_URL"), environment.get("AWS_DEFAULT_REGION")


def cluster_entries(connection: Connection, name: str) -> list[Entry]:
    """The sweep's Jobs in the connection's namespace; trials whose Job is gone (never created, or deleted)
    are `missing`, with their metrics.json when their output still holds one."""
    found = job_reports(connection, f"{SWEEP_LABEL}={name}")
    if not found:
        raise ApiRefused(
            f"no Jobs of sweep {name} in {connection.where()} (label {SWEEP_LABEL}={name}); pass -n NAMESPACE, or "
            f"--local for a sweep run on this machine"
        )
    entries: dict[int, Entry] = {}
    total = 0
    storage: tuple[str | None, str | None] = (None, None)
    for job, report in found:
        metadata = job["metadata"]
        annotations, labels = metadata.get("annotations") or {}, metadata.get("labels") or {}
        number = int(labels.get(TRIAL_LABEL, "0") or 0)
        output = annotations.get(OUTPUT_ANNOTATION, "")
        total = max(total, int(annotations.get(TRIALS_ANNOTATION, "0") or 0), number)
        storage = _storage(job)
        entries[number] = Entry(
            number,
            metadata["name"],
            STATES.get(report.phase, "pending"),
            json.loads(annotations.get(OVERRIDES_ANNOTATION) or "{}"),
            output,
            fetch_metrics(output, *storage) if output else None,
        )
    base = next((entry.output for entry in entries.values() if entry.output), "").rsplit("/trials/", 1)[0]
    for number in range(1, total + 1):
        if number not in entries:
            output = trial_output(base, number) if base else ""
            metrics = fetch_metrics(output, *storage) if output else None
            entries[number] = Entry(number, trial_name(name, number), "missing", {}, output, metrics)
    return [entries[number] for number in sorted(entries)]
