"""An MLflow run fed from the job's progress events; logging never stalls or fails the training.

The training thread only queues: every MLflow call runs on one background thread, in order. Metrics queued within
METRICS_INTERVAL_SECONDS of the last ones sent go together in one request (at once when closing). While the server
is unreachable or answers 5xx (or 408/429) the thread retries the call at the head of the queue (0.5 s doubling up
to `retry_seconds`) and the rest wait behind it: one `tracking_retry` event when calls start failing, one
`tracking_resumed` when they get through again. A call the server rejects for good (another 4xx, a missing local
file) is dropped with a `tracking_dropped` event. Step metrics are dropped once BACKLOG_LIMIT calls are queued
(counted in `tracking_dropped`, `tracking_resumed` and `tracking_unsent`); epochs, params and artefacts are kept.
Events are emitted on the background thread (and by `close`), never from `record`. `close` waits a bounded time for
the backlog, then marks the run FINISHED or reports what was left with `tracking_unsent`.

A restarted job logs to the same run: the run is found by its RESUME_TAG tag (the job's output) in the experiment,
and created only when none matches (the experiment is created, or restored when deleted, as needed).

Artefacts keep the file's name, under the label's directory when the label has one (`tensorboard/<file>`), under
`plots/` for images, else at the run's artefact root: classes.json, metrics.json, model.mindir, plots/*.png,
tensorboard/*.

MLflow's HTTP client retries a failed request itself for minutes and waits 120 s for an answer; those limits are
read from environment variables at every request and cannot be set per client, so constructing an MlflowRun sets
CLIENT_ENVIRONMENT in this process (inherited by its children): one attempt gives up after REQUEST_TIMEOUT_SECONDS
and the retrying is this module's. Nothing else in the job uses MLflow. MLflow's usage telemetry is turned off unless
MLFLOW_DISABLE_TELEMETRY is set (it is decided when mlflow is first imported, on the background thread).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from job.progress import Progress

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

TARGET = "mlflow"
RESUME_TAG = "finetune.output"  # the tag that identifies the run of a job across restarts
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 5
BACKLOG_LIMIT = 5000  # queued calls beyond which step metrics are dropped
PER_BATCH = 100  # MLflow's limit of params (and of tags) in one log_batch request
CLIENT_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT_SECONDS),
}
EPOCH_METRICS = {
    "loss": "train_loss",
    "train_accuracy": "train_accuracy",
    "lr": "lr",
    "images_per_second": "images_per_second",
}
STEP_METRICS = {"loss": "step_loss", "accuracy": "step_accuracy"}
NOT_METRICS = frozenset({"event", "time", "rank"})  # fields of a `done` event that are not results
LOGGED_EVENTS = frozenset({"epoch", "step", "done"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".svg"})
TRANSIENT_STATUS = frozenset({408, 429})  # besides 5xx
METRICS_INTERVAL_SECONDS = 5.0  # metrics queued meanwhile go together: one request per interval, not per event
METRICS_PER_BATCH = 1000  # MLflow's limit of metrics in one log_batch request


@dataclass(frozen=True)
class _Call:
    """One queued call (the run's setup: a few idempotent ones); `send` raises when it did not get through."""

    what: str  # named in events
    send: Callable[[MlflowClient], None]
    droppable: bool = False  # step metrics: dropped when the backlog is full
    event: dict | None = None  # a metrics call's event; consecutive ones are sent as one batch
    received: float = 0.0  # when it was queued (the timestamp of an event without `time`)


class MlflowRun:
    """The job's MLflow run: params at creation, metrics per epoch and step, the final results and artefacts."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        run_name: str,
        params: dict[str, str],
        tags: dict[str, str],
        progress: Progress,
        retry_seconds: float = MAX_DELAY_SECONDS,
    ) -> None:
        """`retry_seconds`: the longest wait between two attempts while the server is away."""
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.tags = {key: str(value) for key, value in tags.items()}
        self.progress = progress
        self.retry_seconds = retry_seconds
        self.run_id: str | None = None
        self._run_params: dict[str, str] = {}  # those the run had when found (a restarted job)
        self._queue: deque[_Call] = deque()  # the head is the call in flight
        self._changed = threading.Condition()
        self._closed = False
        self._stopped = threading.Event()
        self._failing = False
        self._dropped_steps = 0
        self._metrics_sent = 0.0  # monotonic time of the last metrics batch
        self._reported_drops = 0
        os.environ.update(CLIENT_ENVIRONMENT)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        self._put(_Call("run", self._open_run))
        items = sorted((key, str(value)) for key, value in params.items())
        for start in range(0, len(items), PER_BATCH):
            self._put(_Call("params", partial(self._log_params, dict(items[start : start + PER_BATCH]))))
        self._thread = threading.Thread(target=self._run, name="mlflow-run", daemon=True)
        self._thread.start()

    def record(self, item: dict) -> None:
        """Queue the metrics of an `epoch`, `step` or `done` event (others are ignored); never blocks or raises."""
        event = item.get("event")
        if event in LOGGED_EVENTS:
            what = f"epoch {item.get('epoch')}" if event == "epoch" else f"{event} metrics"
            self._put(_Call(what, _unbatched, droppable=event == "step", event=dict(item), received=time.time()))

    def log_artifacts(self, files: dict[str, Path]) -> None:
        """Queue result files (label -> local file, kept until `close`) for upload."""
        for label, path in files.items():
            self._put(_Call(f"artefact {label}", partial(self._log_artifact, path, _artifact_dir(label, path))))

    def close(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the backlog and mark the run FINISHED; else report what is unsent."""
        self._put(_Call("finish", self._finish))
        with self._changed:
            self._closed = True
            drained = self._changed.wait_for(lambda: not self._queue, timeout)
            unsent = max(len(self._queue) - 1, 0)  # the finish call is the last
            dropped = self._dropped_steps
            self._stopped.set()
            self._changed.notify_all()
        if not drained:
            self.progress.emit(
                "tracking_unsent",
                target=TARGET,
                unsent=unsent,
                dropped_steps=dropped,
                problem=f"not sent within {timeout:g} s; the MLflow run stays RUNNING",
            )
        self._thread.join(timeout=1.0)

    def _put(self, call: _Call) -> None:
        with self._changed:
            if self._closed:
                return
            if call.droppable and len(self._queue) >= BACKLOG_LIMIT:
                self._dropped_steps += 1
                return
            self._queue.append(call)
            self._changed.notify_all()

    def _run(self) -> None:
        client = self._client()
        while client is not None and (call := self._next()) is not None:
            if call.event is not None and (call := self._batched()) is None:
                continue
            if not self._deliver(client, call):
                return
            with self._changed:
                self._queue.popleft()
                if self.run_id is None:  # the run could not be opened: nothing can be logged
                    self._closed = True
                    self._queue.clear()
                self._changed.notify_all()

    def _client(self) -> MlflowClient | None:
        try:
            from mlflow.tracking import MlflowClient

            return MlflowClient(self.tracking_uri)
        except Exception as exc:  # mlflow missing or the URI unusable: the training goes on untracked
            self._report("tracking_dropped", what="run", problem=_describe(exc))
            with self._changed:
                self._closed = True
                self._queue.clear()
                self._changed.notify_all()
            return None

    def _next(self) -> _Call | None:
        with self._changed:
            self._changed.wait_for(lambda: self._queue or self._stopped.is_set())
            return None if self._stopped.is_set() else self._queue[0]

    def _batched(self) -> _Call | None:
        """Once METRICS_INTERVAL_SECONDS passed since the last metrics were sent (at once when closing), the
        metrics calls at the head of the queue as one call, which replaces them there; None when none was left
        (all malformed)."""
        with self._changed:
            due = self._metrics_sent + METRICS_INTERVAL_SECONDS
            self._changed.wait_for(lambda: self._closed or self._stopped.is_set(), max(due - time.monotonic(), 0))
            merged: list[_Call] = []
            metrics: list[tuple[str, float, int, int]] = []
            while self._queue and self._queue[0].event is not None:
                call = self._queue.popleft()
                assert call.event is not None  # the loop's condition
                try:
                    more = _metrics(call.event, call.received)
                except (KeyError, TypeError, ValueError) as exc:  # a malformed event: only it is lost
                    self._report("tracking_dropped", what=call.what, problem=_describe(exc))
                    continue
                if merged and len(metrics) + len(more) > METRICS_PER_BATCH:
                    self._queue.appendleft(call)  # the next batch's first
                    break
                merged.append(call)
                metrics += more
            if not merged:
                return None
            what = merged[0].what if len(merged) == 1 else f"{merged[0].what} to {merged[-1].what}"
            batch = _Call(what, partial(self._log_metrics, metrics))
            self._queue.appendleft(batch)
            self._metrics_sent = time.monotonic()
            return batch

    def _deliver(self, client: MlflowClient, call: _Call) -> bool:
        """Send `call`, retrying while the server is away; False when stopped first."""
        delay = min(FIRST_DELAY_SECONDS, self.retry_seconds)
        while True:
            self._report_drops()
            try:
                call.send(client)
            except Exception as exc:
                if not _transient(exc):
                    self._report("tracking_dropped", what=call.what, problem=_describe(exc))
                    return True
                if not self._failing:
                    self._failing = True
                    self._report("tracking_retry", problem=_describe(exc), retry_in_seconds=delay)
                if self._stopped.wait(delay):
                    return False
                delay = min(delay * 2, self.retry_seconds)
                continue
            if self._failing:
                self._failing = False
                self._report("tracking_resumed", backlog=len(self._queue) - 1, dropped_steps=self._dropped_steps)
            return True

    def _report_drops(self) -> None:
        dropped = self._dropped_steps
        if dropped > self._reported_drops:
            self._report(
                "tracking_dropped",
                what="step metrics",
                count=dropped - self._reported_drops,
                problem=f"more than {BACKLOG_LIMIT} calls were queued",
            )
            self._reported_drops = dropped

    def _report(self, event: str, **fields: object) -> None:
        if not self._stopped.is_set():
            self.progress.emit(event, target=TARGET, **fields)

    def _open_run(self, client: MlflowClient) -> None:
        from mlflow.entities import RunStatus, RunTag
        from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

        experiment_id = self._experiment_id(client)
        tags = {key: value[:MAX_TAG_VAL_LENGTH] for key, value in self.tags.items()}
        run = self._existing_run(client, experiment_id)
        if run is None:
            run = client.create_run(experiment_id, tags=tags, run_name=self.run_name or None)
        elif run.info.status != RunStatus.to_string(RunStatus.RUNNING):
            client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        missing = [RunTag(key, value) for key, value in tags.items() if run.data.tags.get(key) != value]
        for start in range(0, len(missing), PER_BATCH):
            client.log_batch(run.info.run_id, tags=missing[start : start + PER_BATCH])
        self._run_params = dict(run.data.params)
        self.run_id = run.info.run_id

    def _experiment_id(self, client: MlflowClient) -> str:
        """The experiment's id: created when missing, restored when deleted."""
        from mlflow.exceptions import MlflowException

        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return client.create_experiment(self.experiment)
            except MlflowException as exc:  # another job may have created it meanwhile
                found = client.get_experiment_by_name(self.experiment)
                if exc.error_code != "RESOURCE_ALREADY_EXISTS" or found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
            self._report("tracking_restored", experiment=self.experiment, experiment_id=found.experiment_id)
        return found.experiment_id

    def _existing_run(self, client: MlflowClient, experiment_id: str) -> Run | None:
        """The active run an earlier attempt of this job created, if any."""
        value = self.tags.get(RESUME_TAG)
        if value is None:
            return None
        quote = '"' if "'" in value else "'"
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RESUME_TAG}` = {quote}{value}{quote}",
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        return runs[0] if runs else None

    def _log_params(self, params: dict[str, str], client: MlflowClient) -> None:
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        fresh = [
            Param(key, value[:MAX_PARAM_VAL_LENGTH]) for key, value in params.items() if key not in self._run_params
        ]
        client.log_batch(self._current_run(), params=fresh)

    def _log_metrics(self, metrics: list[tuple[str, float, int, int]], client: MlflowClient) -> None:
        from mlflow.entities import Metric

        client.log_batch(self._current_run(), metrics=[Metric(*metric) for metric in metrics])

    def _log_artifact(self, path: Path, directory: str | None, client: MlflowClient) -> None:
        client.log_artifact(self._current_run(), str(path), artifact_path=directory)

    def _finish(self, client: MlflowClient) -> None:
        client.set_terminated(self._current_run(), status="FINISHED")

    def _current_run(self) -> str:
        assert self.run_id is not None  # every other call waits behind the run's setup
        return self.run_id


def _unbatched(client: MlflowClient) -> None:
    """A metrics call is only ever sent merged into a batch (MlflowRun._batched)."""
    raise AssertionError("metrics are sent in batches")


def _metrics(item: dict, received: float) -> list[tuple[str, float, int, int]]:
    """(key, value, timestamp in ms, step) of an `epoch` (step: the epoch), `step` (the global step) or `done`
    event; fields that are not numbers are left out."""
    event = item["event"]
    if event == "epoch":
        values = {name: item.get(field) for field, name in EPOCH_METRICS.items()}
        values.update({f"eval_{field}": value for field, value in (item.get("eval") or {}).items()})
        step = item["epoch"]
    elif event == "step":
        values = {name: item.get(field) for field, name in STEP_METRICS.items()}
        step = item["step"]
    else:
        values = {f"final_{field}": value for field, value in item.items() if field not in NOT_METRICS}
        step = 0
    stamp = int(item.get("time", received) * 1000)
    return [(key, float(value), stamp, int(step)) for key, value in values.items() if _is_number(value)]


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _artifact_dir(label: str, path: Path) -> str | None:
    """The label's directory (`tensorboard/<file>`), `plots` for images, else the artefact root."""
    if "/" in label:
        return label.rsplit("/", 1)[0]
    return "plots" if path.suffix.lower() in IMAGE_SUFFIXES else None


def _transient(exc: Exception) -> bool:
    """True for failures a later attempt may get past: no connection, a timeout, 5xx, 408, 429."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        status = exc.get_http_status_code()
    elif isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
    else:
        return isinstance(exc, (requests.RequestException, ConnectionError, TimeoutError))
    return status >= 500 or status in TRANSIENT_STATUS


def _describe(exc: Exception) -> str:
    """The first line of the error, shortened (MLflow's messages can quote whole requests)."""
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[0][:300]}"
