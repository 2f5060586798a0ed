"""The trackers of one run (TensorBoard event files, an MLflow run), fed with the run's progress events.

A tracker that fails is turned off with one `tracking_failed` event: tracking never stops the training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contract.settings import Settings
from job.progress import Progress
from job.tracking.tensorboard import EVENT_DIR, EventLog


def mlflow_run_name(settings: Settings) -> str:
    """FT_MLFLOW_RUN_NAME, or the last part of FT_OUTPUT."""
    return settings.mlflow_run_name or settings.output.rstrip("/").rsplit("/", 1)[-1] or settings.output


class Tracking:
    """Opened once rank 0 resumed (the epochs done decide what TensorBoard purges), closed when the run ends."""

    def __init__(
        self,
        settings: Settings,
        progress: Progress,
        output_uri: str,
        scratch: Path,
        steps_per_epoch: int,
        epochs_done: int,
        attempt: str,
    ) -> None:
        self.progress = progress
        self.flush_timeout = settings.mlflow_flush_timeout_seconds
        self.events: EventLog | None = None
        self.mlflow: Any = None
        if settings.tensorboard:
            self.events = EventLog(scratch / EVENT_DIR, steps_per_epoch, epochs_done, attempt)
        if settings.mlflow_tracking_uri:
            from job.tracking.mlflow_run import MlflowRun

            params = {name: str(value) for name, value in settings.model_dump(mode="json").items()}
            self.mlflow = MlflowRun(
                settings.mlflow_tracking_uri,
                settings.mlflow_experiment,
                mlflow_run_name(settings),
                params,
                {"finetune.output": output_uri, "finetune.model": settings.model},
                progress,
            )
        progress.listen(self.record)

    def __enter__(self) -> Tracking:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """A run that failed or was stopped waits at most a second for MLflow's backlog."""
        self.close(self.flush_timeout if kind is None else min(1.0, self.flush_timeout))

    def _failed(self, tracker: str, exc: Exception) -> None:
        setattr(self, tracker, None)
        self.progress.emit("tracking_failed", target=tracker, problem=f"{type(exc).__name__}: {exc}")

    def record(self, item: dict) -> None:
        for name in ("events", "mlflow"):
            tracker = getattr(self, name)
            if tracker is None:
                continue
            try:
                tracker.record(item)
            except Exception as exc:  # a local fault (disk full) or a bug: the training goes on untracked
                self._failed(name, exc)

    def event_files(self, folder: Path) -> dict[str, Path]:
        """Copies of the event files so far in `folder`, to commit with an epoch; none when TensorBoard is off."""
        if self.events is None:
            return {}
        try:
            return self.events.copy_to(folder)
        except Exception as exc:
            self._failed("events", exc)
            return {}

    def final_event_files(self, confusion_png: Path, folder: Path) -> dict[str, Path]:
        """The confusion matrix added, the event files closed and copied into `folder`, for the results."""
        if self.events is None:
            return {}
        try:
            self.events.image(confusion_png)
            copies = self.events.copy_to(folder)
            self.events.close()
        except Exception as exc:
            self._failed("events", exc)
            return {}
        self.events = None
        return copies

    def results(self, summary: dict, files: dict[str, Path]) -> None:
        """The run's summary and result files to MLflow (queued: sent in the background)."""
        if self.mlflow is not None:
            self.record({"event": "done", **summary})
            self.mlflow.log_artifacts(files)

    def close(self, timeout: float) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None
        if self.mlflow is not None:
            self.mlflow.close(timeout)
            self.mlflow = None
