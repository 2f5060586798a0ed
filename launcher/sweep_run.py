"""Running a sweep's trials: one after another on this machine, or as Jobs in the cluster with at most
`parallel` of them running at once, each followed by the cluster module's wait under one deadline. A trial
whose Job exists is followed, not created again; one whose output holds a finished metrics.json is not run
again."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from launcher.cluster import find_jobs, read_job, submit, wait
from launcher.connection import Connection, Deadline
from launcher.diagnose import Report
from launcher.errors import ApiRefused, LauncherError, SpecError
from launcher.gate import fetch_metrics
from launcher.local import run_local
from launcher.sweep import OUTPUT_ANNOTATION, OVERRIDES_ANNOTATION, SWEEP_LABEL, Sweep, Trial, describe_overrides
from launcher.sweep_record import check_record, write_record

STATES = {"Succeeded": "succeeded", "Failed": "failed", "Running": "running"}  # any other phase: pending


@dataclass(frozen=True)
class Outcome:
    """How a trial ended in this run: its state, whether it is stuck, and whether an earlier run finished it."""

    trial: Trial
    state: str
    stuck: bool = False
    earlier: bool = False


def finished(trial: Trial) -> dict | None:
    """The trial's metrics.json when its output holds a finished run of the same settings; SpecError when it
    holds a run of other settings (the output belongs to another sweep)."""
    storage = trial.spec.storage
    metrics = fetch_metrics(trial.output, storage.endpoint, storage.region)
    if metrics is None:
        return None
    settings = metrics.get("settings") or {}
    differing = {
        key: settings[key] for key, value in trial.overrides.items() if key in settings and settings[key] != value
    }
    if differing:
        raise SpecError(
            f"{trial.output} holds a finished run with {describe_overrides(differing)}, not trial {trial.label}'s "
            f"{describe_overrides(trial.overrides)}: the output belongs to another sweep; pass another --name or "
            f"--set output=..."
        )
    return metrics


def run_here(sweep: Sweep, json_lines: bool, note: Callable[[str], None]) -> list[Outcome]:
    """Every trial on this machine with run_local, one after another, each in its workdir .launcher/<job>; the
    local record follows their states."""
    check_record(sweep)
    states: dict[int, str] = {}
    outcomes = []
    for trial in sweep.trials:
        if finished(trial) is not None:
            note(f"{trial.name} ({trial.describe()}): finished earlier, metrics.json in {trial.output}")
            states[trial.number] = "succeeded"
            outcomes.append(Outcome(trial, "succeeded", earlier=True))
            continue
        note(f"{trial.name} ({trial.describe()}): running here, output {trial.output}")
        states[trial.number] = "running"
        write_record(sweep, states)
        code = run_local(trial.spec, None, json_lines=json_lines)
        states[trial.number] = "succeeded" if code == 0 else "failed"
        outcomes.append(Outcome(trial, states[trial.number]))
    write_record(sweep, states)
    return outcomes


class _Aborted(LauncherError):
    """The sweep stopped (another trial's error, an interrupt): a trial's wait ends early."""


@dataclass
class _SweepDeadline(Deadline):
    """The sweep's one deadline, which an abort also ends for every trial still followed."""

    aborted: threading.Event = field(default_factory=threading.Event)

    def check(self, what: str) -> None:
        if self.aborted.is_set():
            raise _Aborted(what)
        super().check(what)

    def cap(self, seconds: float) -> float:
        return 0.1 if self.aborted.is_set() else super().cap(seconds)


def same_trial(trial: Trial, job: dict) -> None:
    """The Job must be this trial's (the same overrides and output), else the sweep id is another sweep's."""
    annotations = job["metadata"].get("annotations") or {}
    try:
        overrides = json.loads(annotations.get(OVERRIDES_ANNOTATION) or "null")
    except ValueError:
        overrides = None
    if overrides != trial.overrides or annotations.get(OUTPUT_ANNOTATION) != trial.output:
        theirs = describe_overrides(overrides) if isinstance(overrides, dict) else "no sweep overrides"
        raise SpecError(
            f"Job {trial.name} exists with {theirs} and output {annotations.get(OUTPUT_ANNOTATION) or 'unknown'}, "
            f"not trial {trial.label}'s {trial.describe()} and {trial.output}: the sweep id is taken by a different "
            f"sweep; pass another --name, or delete its Jobs (launcher cancel {trial.name})"
        )


class ClusterSweep:
    """The trials as Jobs (each trial's rendered `documents`), at most sweep.parallel running at once, in trial
    order, all within `timeout` (TimedOut); `on_report` sees every change of a followed Job; a stuck trial stops
    new ones from starting."""

    def __init__(
        self,
        sweep: Sweep,
        documents: dict[int, list[dict]],
        connection: Connection,
        timeout: float | None,
        on_report: Callable[[Report], None],
        note: Callable[[str], None],
    ) -> None:
        self.sweep, self.documents, self.connection = sweep, documents, connection
        self.deadline = _SweepDeadline(timeout)
        self.on_report, self.note = on_report, note
        self.halted = threading.Event()
        self.existing: dict[str, dict] = {}

    def _create(self, trial: Trial) -> str:
        """Create the trial's Job, or follow the one already there (409) when it is this trial's."""
        if trial.name in self.existing:
            return "exists already, followed"
        try:
            submit(self.connection, self.documents[trial.number], dry_run=False)
            return f"created in {self.connection.where()}"
        except ApiRefused as exc:
            if "409" not in str(exc):
                raise
        same_trial(trial, read_job(self.connection, trial.name))
        return "exists already, followed"

    def _trial(self, trial: Trial) -> Outcome:
        if self.halted.is_set():
            return Outcome(trial, "missing")
        self.deadline.check(f"{trial.name} not created yet")
        self.note(f"{trial.name} ({trial.describe()}): {self._create(trial)}")
        report = wait(self.connection, trial.name, self.deadline, self.on_report)
        if report.stuck:
            self.halted.set()
            self.note(f"{report.text()} (stuck: no further trial is started)")
        return Outcome(trial, STATES.get(report.phase, "pending"), stuck=report.stuck)

    def run(self) -> list[Outcome]:
        jobs = find_jobs(self.connection, f"{SWEEP_LABEL}={self.sweep.name}")
        self.existing = {job["metadata"]["name"]: job for job in jobs}
        for trial in self.sweep.trials:
            if trial.name in self.existing:
                same_trial(trial, self.existing[trial.name])
        outcomes: dict[int, Outcome] = {}
        waiting = []
        for trial in self.sweep.trials:
            if trial.name not in self.existing and finished(trial) is not None:
                self.note(f"{trial.name} ({trial.describe()}): finished earlier, metrics.json in {trial.output}")
                outcomes[trial.number] = Outcome(trial, "succeeded", earlier=True)
            else:
                waiting.append(trial)
        with ThreadPoolExecutor(max_workers=self.sweep.parallel, thread_name_prefix="trial") as pool:
            futures = [pool.submit(self._trial, trial) for trial in waiting]
            try:
                for future in as_completed(futures):
                    outcome = future.result()
                    outcomes[outcome.trial.number] = outcome
            except BaseException:
                self.halted.set()
                self.deadline.aborted.set()
                for future in futures:
                    future.cancel()
                raise
        return [outcomes[trial.number] for trial in self.sweep.trials]
