"""Early stopping: the rule on its own, and end to end through `python -m job` with a kill inside the patience
window (the resumed run stops at the epoch the uninterrupted one stopped at)."""

from __future__ import annotations

import shutil
import signal

import pytest

from conftest import assert_same_training, environment, metrics_of
from contract.settings import Settings
from jobprocess import JobProcess, event
from job.early_stop import Patience, observe

REQUIRED = {"model": "m", "train_data": "t", "eval_data": "e", "output": "o"}
# min_delta 1 on top-1: nothing after the first evaluation counts as better, so the run stops at epoch 1 + patience.
PLATEAU = {"FT_EPOCHS": "6", "FT_EARLY_STOP_PATIENCE": "2", "FT_EARLY_STOP_MIN_DELTA": "1"}


def _settings(**values) -> Settings:
    return Settings.model_validate({**REQUIRED, **values})


def _run(values: list[float], **settings) -> Patience:
    patience = Patience()
    configured = _settings(**settings)
    for epoch, value in enumerate(values, start=1):
        patience = observe(patience, epoch, {"top1": value, "loss": value}, configured)
    return patience


def test_top1_stops_after_patience_evaluations_without_improvement():
    patience = _run([0.5, 0.7, 0.69, 0.7, 0.6], early_stop_patience=3)
    assert (patience.stopped_epoch, patience.best, patience.best_epoch, patience.waited) == (5, 0.7, 2, 3)
    assert "did not improve" in patience.reason and "epoch 2" in patience.reason


def test_loss_is_watched_downwards_and_min_delta_decides_what_counts():
    assert _run([1.0, 0.8, 0.79, 0.78], early_stop_patience=2, early_stop_metric="loss").stopped_epoch is None
    stopped = _run([1.0, 0.8, 0.79, 0.78], early_stop_patience=2, early_stop_metric="loss", early_stop_min_delta=0.05)
    assert (stopped.stopped_epoch, stopped.best_epoch) == (4, 2)


def test_no_patience_never_stops_and_epochs_without_evaluation_change_nothing():
    assert _run([0.9, 0.1, 0.1, 0.1]).stopped_epoch is None
    patience = _run([0.9, 0.1], early_stop_patience=5)
    assert observe(patience, 3, {}, _settings(early_stop_patience=5)) == patience


def test_the_state_survives_a_round_trip_through_a_commit():
    patience = _run([0.5, 0.4], early_stop_patience=3)
    assert Patience.from_state(patience.as_state()) == patience
    assert Patience.from_state(None) == Patience()


def test_patience_without_evaluations_is_refused():
    with pytest.raises(ValueError, match="FT_EVAL_EVERY"):
        _settings(early_stop_patience=2, eval_every=0)


@pytest.fixture(scope="module")
def stopped_early(hub_and_data, tmp_path_factory) -> dict:
    output = str(tmp_path_factory.mktemp("stopped-early") / "out")
    job = JobProcess(environment(hub_and_data, output, **PLATEAU))
    assert job.finish() == 0, job.stderr[-2000:]
    return {**metrics_of(output), "output": output}


@pytest.mark.slow
def test_the_run_stops_early_and_says_where_and_why(stopped_early):
    assert [record["epoch"] for record in stopped_early["history"]] == [1, 2, 3]
    assert stopped_early["summary"]["epochs"] == 3
    stop = stopped_early["early_stop"]
    assert (stop["stopped_epoch"], stop["best_epoch"], stop["waited"], stop["patience"]) == (3, 1, 2, 2)
    assert "did not improve by more than 1" in stop["reason"]
    assert all(record["eval"]["loss"] > 0 for record in stopped_early["history"])


@pytest.mark.slow
def test_a_run_killed_inside_the_patience_window_stops_at_the_same_epoch(hub_and_data, stopped_early, tmp_path):
    settings = environment(hub_and_data, str(tmp_path / "out"), **PLATEAU)
    first = JobProcess(settings)
    first.wait_for(event("committed", epoch=2))  # one evaluation without improvement so far
    first.signal(signal.SIGKILL)
    first.finish()

    second = JobProcess(settings)
    assert second.finish() == 0, second.stderr[-2000:]
    assert second.events("resumed")[0]["epoch"] == 2
    assert [stop["epoch"] for stop in second.events("early_stop")] == [3]
    metrics = metrics_of(str(tmp_path / "out"))
    assert metrics["early_stop"] == stopped_early["early_stop"]
    assert_same_training(metrics["history"], stopped_early["history"], "resumed inside the patience window")


@pytest.mark.slow
def test_a_run_resumed_after_its_early_stop_trains_no_further(hub_and_data, stopped_early, tmp_path):
    """An attempt that committed the epoch it stopped at but died before its results: the next one only
    evaluates and commits them (its output is the early-stopped run's, without metrics.json)."""
    output = tmp_path / "out"
    shutil.copytree(stopped_early["output"], output)
    (output / "metrics.json").unlink()
    job = JobProcess(environment(hub_and_data, str(output), **PLATEAU))
    assert job.finish() == 0, job.stderr[-2000:]
    assert job.events("resumed")[0]["epoch"] == 3
    assert not job.events("epoch")
    metrics = metrics_of(str(output))
    assert metrics["summary"]["epochs"] == 3 and metrics["early_stop"] == stopped_early["early_stop"]
