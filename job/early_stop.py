"""Early stopping: training ends once the watched evaluation metric stopped improving for FT_EARLY_STOP_PATIENCE
evaluations. Its state travels in every committed epoch, so a resumed run stops where an uninterrupted one would."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from contract.settings import EarlyStopMetric, Settings


@dataclass(frozen=True)
class Patience:
    """Where the watched metric stands: its best value, the epoch of it, evaluations since, and whether and why
    the run stopped."""

    best: float | None = None
    best_epoch: int | None = None
    waited: int = 0
    stopped_epoch: int | None = None
    reason: str | None = None

    @classmethod
    def from_state(cls, state: dict | None) -> Patience:
        """The state a committed epoch recorded (none: a run that has not evaluated yet)."""
        return cls(**state) if state else cls()

    def as_state(self) -> dict:
        return asdict(self)

    @property
    def stopped(self) -> bool:
        return self.stopped_epoch is not None


def _improves(value: float, best: float | None, metric: EarlyStopMetric, min_delta: float) -> bool:
    if best is None:
        return True
    return value > best + min_delta if metric is EarlyStopMetric.TOP1 else value < best - min_delta


def observe(patience: Patience, epoch: int, evaluation: dict, settings: Settings) -> Patience:
    """The state after epoch `epoch`'s evaluation (`evaluation` holds top1 and loss); an epoch without one
    changes nothing. With FT_EARLY_STOP_PATIENCE=0 the best is tracked and the run never stops."""
    metric = settings.early_stop_metric
    if not evaluation or patience.stopped:
        return patience
    value = float(evaluation[metric.value])
    if _improves(value, patience.best, metric, settings.early_stop_min_delta):
        return replace(patience, best=value, best_epoch=epoch, waited=0)
    waited = patience.waited + 1
    if settings.early_stop_patience and waited >= settings.early_stop_patience:
        reason = (
            f"eval {metric.value} did not improve by more than {settings.early_stop_min_delta:g} for {waited} "
            f"evaluations (best {patience.best:.4g} at epoch {patience.best_epoch})"
        )
        return replace(patience, waited=waited, stopped_epoch=epoch, reason=reason)
    return replace(patience, waited=waited)
