"""What a Job is really doing, from the Job, its pods, their events, a Kueue Workload and the job's own JSON
progress lines: one phase, one line a person can act on, and whether the state can still heal on its own.

Pure functions over the API's JSON documents (the cluster module fetches them)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from contract import exits

PULL_GRACE_SECONDS = 300.0  # an image pull still backing off after this long will not heal by itself
PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff"}
NEVER_STARTS = {"InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "ErrImageNeverPull"}
CLUSTER_STOPS = {"DeadlineExceeded"}  # the Job's own deadline: a retry cannot happen
STARTING = {"ContainerCreating", "PodInitializing"}


@dataclass
class Report:
    """A Job's phase (Pending, Running, Succeeded, Failed, Suspended), the one line that explains it, and
    whether waiting longer can change anything (`stuck`)."""

    name: str
    namespace: str
    phase: str
    line: str
    stuck: bool = False
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    exit_code: int | None = None
    progress: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    created: str | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def text(self) -> str:
        return f"{self.name} (namespace {self.namespace}): {self.phase}: {self.line}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.phase}


def _time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _conditions(document: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (document.get("status") or {}).get("conditions") or []}


def _true(conditions: dict[str, dict], kind: str) -> dict | None:
    condition = conditions.get(kind)
    return condition if condition and condition.get("status") == "True" else None


def _newest_event(events: list[dict], kinds: tuple[str, ...] = ("Warning",)) -> dict | None:
    chosen = [event for event in events if event.get("type", "Normal") in kinds]
    return max(
        chosen,
        key=lambda event: event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "",
        default=None,
    )


def _waiting(pod: dict) -> dict | None:
    statuses = (pod.get("status") or {}).get("initContainerStatuses") or []
    statuses += (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            return waiting
    return None


def _terminated(pod: dict) -> dict | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or (status.get("lastState") or {}).get("terminated")
        if terminated:
            return terminated
    return None


def _last_error_line(message: str | None) -> str:
    """The last `error:` line of a termination message (the log tail with FallbackToLogsOnError)."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1]


def progress_from_lines(lines: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(progress, summary) from the job's output: the newest `start`, `step` and `epoch` events, and the
    summary the job prints as its last line."""
    start: dict = {}
    step: dict = {}
    epochs: list[dict] = []
    summary = None
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("event")
        if kind == "start":
            start, step, epochs = item, {}, []
        elif kind == "step":
            step = item
        elif kind == "epoch":
            epochs.append(item)
        elif kind is None and "top1" in item and "metrics" in item:
            summary = item
    if not start:
        return None, summary
    progress = progress_of(start, step, epochs)
    return progress, summary


def progress_of(start: dict, step: dict, epochs: list[dict]) -> dict[str, Any]:
    """Epoch k of n, the newest loss and accuracy, images/s, the newest evaluation and an ETA."""
    total = int(start.get("epochs") or 0)
    done = int(epochs[-1]["epoch"]) if epochs else int(start.get("first_epoch", 1)) - 1
    current = int(step.get("epoch", done + 1)) if step else done + 1
    steps = int(start.get("steps_per_epoch") or 0)
    progress: dict[str, Any] = {"epoch": min(current, total) if total else current, "epochs": total}
    if step:
        progress.update(
            step=step.get("step"),
            loss=step.get("loss"),
            accuracy=step.get("accuracy"),
            images_per_second=step.get("images_per_second"),
        )
    if epochs:
        last = epochs[-1]
        evaluation = last.get("eval") or {}
        if evaluation.get("top1") is not None:
            progress["eval_top1"] = evaluation["top1"]
        seconds = [float(record["seconds"]) for record in epochs if record.get("seconds")]
        if seconds and total:
            per_epoch = sum(seconds) / len(seconds)
            into_epoch = 0.0
            if step and steps and int(step.get("epoch", 0)) == done + 1:
                into_epoch = ((int(step.get("step", 0)) - 1) % steps + 1) / steps
            progress["eta_seconds"] = round(max(0.0, (total - done - into_epoch) * per_epoch), 1)
    return progress


def _pending_line(pods: list[dict], events: list[dict], workloads: list[dict], now: datetime) -> tuple[str, bool]:
    """Why nothing runs yet, and whether it is stuck."""
    for workload in workloads:
        conditions = _conditions(workload)
        if not _true(conditions, "Admitted"):
            reason = conditions.get("QuotaReserved") or conditions.get("Admitted") or {}
            message = reason.get("message") or "waiting for quota"
            queue = (workload.get("spec") or {}).get("queueName")
            return f"waiting for Kueue admission{f' in queue {queue}' if queue else ''}: {message}", False
    for pod in pods:
        waiting = _waiting(pod)
        reason = (waiting or {}).get("reason", "")
        message = (waiting or {}).get("message") or ""
        if reason in NEVER_STARTS:
            return f"{reason}: {message or 'the container cannot be created'}", True
        scheduled = _conditions(pod).get("PodScheduled") or {}
        if reason in PULL_FAILURES:
            since = _time(scheduled.get("lastTransitionTime")) or _time(
                pod.get("metadata", {}).get("creationTimestamp")
            )  # pulling starts once the pod has a node
            waited = (now - since).total_seconds() if since else 0.0
            stuck = waited >= PULL_GRACE_SECONDS
            suffix = f" (for {waited:.0f} s)" if waited else ""
            return f"image pull failing{suffix}: {reason}: {message or 'the image cannot be pulled'}", stuck
        if scheduled.get("status") == "False":
            return f"{scheduled.get('reason') or 'not scheduled'}: {scheduled.get('message') or ''}".rstrip(": "), False
        if reason in STARTING:
            return f"{reason}: pulling the image and mounting volumes", False
    warning = _newest_event(events)
    if warning:
        return f"{warning.get('reason')}: {warning.get('message')}", False
    if not pods:
        return "no pod created yet", False
    return "waiting for the pod to start", False


def diagnose(
    job: dict,
    pods: list[dict],
    events: list[dict] | None = None,
    workloads: list[dict] | None = None,
    lines: list[str] | None = None,
    now: datetime | None = None,
) -> Report:
    """The Job's phase and the one line that explains it."""
    now = now or datetime.now(timezone.utc)
    events, workloads = events or [], workloads or []
    metadata, status = job.get("metadata") or {}, job.get("status") or {}
    conditions = _conditions(job)
    progress, summary = progress_from_lines(lines or [])
    report = Report(
        name=metadata.get("name", ""),
        namespace=metadata.get("namespace", ""),
        phase="Running",
        line="",
        active=status.get("active", 0) or 0,
        succeeded=status.get("succeeded", 0) or 0,
        failed=status.get("failed", 0) or 0,
        progress=progress,
        summary=summary,
        conditions=[{k: c.get(k) for k in ("type", "status", "reason", "message")} for c in conditions.values()],
    )
    if _true(conditions, "Complete"):
        report.phase = "Succeeded"
        report.line = _summary_line(summary)
        return report
    failed = _true(conditions, "Failed")
    if failed:
        report.phase = "Failed"
        reason = failed.get("reason") or "Failed"
        terminated = next((t for t in map(_terminated, _newest_first(pods)) if t), None)
        report.stuck = reason in CLUSTER_STOPS
        if terminated:
            code = int(terminated.get("exitCode") or 0)
            report.exit_code = code
            meaning = exits.MEANINGS.get(code, "see the logs")
            error = _last_error_line(terminated.get("message"))
            report.line = f"{reason}: exit code {code} ({meaning}){f': {error}' if error else ''}"
        else:
            report.line = f"{reason}: {failed.get('message') or 'the job failed'}"
        return report
    running = [pod for pod in pods if (pod.get("status") or {}).get("phase") == "Running"]
    suspended = (job.get("spec") or {}).get("suspend") or _true(conditions, "Suspended")
    if running and not suspended:
        report.line = _progress_line(progress)
        return report
    report.phase = "Suspended" if suspended and not workloads else "Pending"
    if suspended and not workloads:
        report.line = "suspended (spec.suspend is true)"
        return report
    report.line, report.stuck = _pending_line(pods, events, workloads, now)
    return report


def _newest_first(pods: list[dict]) -> list[dict]:
    return sorted(pods, key=lambda pod: (pod.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)


def _number(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, (int, float)) else "?"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _progress_line(progress: dict[str, Any] | None) -> str:
    if not progress:
        return "started, no progress reported yet"
    parts = [f"epoch {progress['epoch']} of {progress['epochs']}"]
    if progress.get("loss") is not None:
        parts.append(f"loss {_number(progress['loss'])}")
    if progress.get("accuracy") is not None:
        parts.append(f"accuracy {_number(progress['accuracy'], 3)}")
    if progress.get("eval_top1") is not None:
        parts.append(f"eval top-1 {_number(progress['eval_top1'], 3)}")
    if progress.get("images_per_second") is not None:
        parts.append(f"{_number(progress['images_per_second'], 3)} images/s")
    if progress.get("eta_seconds") is not None:
        parts.append(f"ETA {duration(progress['eta_seconds'])}")
    return ", ".join(parts)


def _summary_line(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "completed"
    return (
        f"top-1 {_number(summary.get('top1'), 3)}, best top-1 {_number(summary.get('best_top1'), 3)} at epoch "
        f"{summary.get('best_epoch')}, metrics in {summary.get('metrics')}"
    )
