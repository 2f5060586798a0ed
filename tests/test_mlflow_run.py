"""MlflowRun against a real MLflow server: what arrives and how it reads back, the same run for a restarted job,
and an outage that never slows the training (a backlog sent in order once the server is back)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from job.progress import Progress
from job.tracking import mlflow_run
from job.tracking.mlflow_run import CLIENT_ENVIRONMENT, RESUME_TAG, MlflowRun
from mlflowserver import MlflowServer, running_server


@pytest.fixture(autouse=True)
def client_environment(monkeypatch) -> None:
    """MlflowRun sets MLflow's client variables in the process: restored after each test."""
    for name, value in {**CLIENT_ENVIRONMENT, "MLFLOW_DISABLE_TELEMETRY": "true"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """One server for the tests that never stop it."""
    yield from running_server(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture()
def own_mlflow_server(tmp_path) -> Iterator[MlflowServer]:
    """A server of the test's own, to stop and restart."""
    yield from running_server(tmp_path / "mlflow")


class Events:
    """A Progress writing JSON lines to memory, and the events read back."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.progress = Progress(self.stream, as_json=True)

    def all(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def named(self, event: str) -> list[dict]:
        return [item for item in self.all() if item["event"] == event]

    def tracking(self) -> list[str]:
        return [item["event"] for item in self.all() if item["event"].startswith("tracking_")]


def epoch_event(epoch: int, evaluated: bool = True) -> dict:
    return {
        "event": "epoch",
        "time": 1_700_000_000.0 + epoch,
        "epoch": epoch,
        "loss": 1.0 / epoch,
        "train_accuracy": 0.5 + epoch / 100,
        "lr": 0.01 * epoch,
        "seconds": 2.5,
        "images_per_second": 500.0 + epoch,
        "eval": {"top1": 0.8 + epoch / 100, "top5": 1.0, "loss": 0.3 / epoch} if evaluated else {},
    }


def step_event(step: int) -> dict:
    return {
        "event": "step",
        "time": 1_700_000_000.0 + step / 10,
        "epoch": 1 + step // 10,
        "step": step,
        "loss": 2.0 / step,
        "accuracy": step / 100,
        "lr": 0.01,
        "images_per_second": 480.0,
    }


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((metric.step, metric.value) for metric in client.get_metric_history(run_id, key))


def wait_until(condition: Callable[[], object], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def closed_port() -> str:
    """A tracking URI nothing listens on (a server that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.slow
def test_params_metrics_and_artefacts_read_back(mlflow_server, tmp_path) -> None:
    events = Events()
    params = {"lr_max": "0.02", "notes": "x" * 7000, **{f"extra_{index:03d}": str(index) for index in range(150)}}
    run = MlflowRun(mlflow_server.uri, "read-back", "first", params, {RESUME_TAG: "s3://b/one"}, events.progress)
    for epoch in (1, 2, 3):
        for step in range(epoch * 10 - 9, epoch * 10 + 1, 5):
            run.record(step_event(step))
        run.record(epoch_event(epoch, evaluated=epoch != 2))
        run.record({"event": "committed", "epoch": epoch})
    run.record({"event": "done", "top1": 0.9, "top5": 1.0, "best_epoch": 3, "metrics": "s3://b/one/metrics.json"})
    png = tmp_path / "plots" / "confusion_matrix.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG not really")
    (tmp_path / "metrics.json").write_text('{"top1": 0.9}')
    (tmp_path / "events.out.tfevents.1").write_bytes(b"events")
    run.log_artifacts(
        {
            "confusion_matrix": png,
            "metrics": tmp_path / "metrics.json",
            "tensorboard/events.out.tfevents.1": tmp_path / "events.out.tfevents.1",
        }
    )
    run.close(30)
    assert events.tracking() == []

    client = MlflowClient(mlflow_server.uri)
    assert run.run_id is not None
    found = client.get_run(run.run_id)
    assert found.info.status == "FINISHED"
    assert found.info.run_name == "first"
    assert found.data.tags[RESUME_TAG] == "s3://b/one"
    assert found.data.params == {**params, "notes": "x" * 6000}  # MLflow's limit of a param value
    assert history(client, run.run_id, "train_loss") == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert history(client, run.run_id, "eval_top1") == [(1, pytest.approx(0.81)), (3, pytest.approx(0.83))]
    assert [step for step, _ in history(client, run.run_id, "eval_loss")] == [1, 3]
    assert [step for step, _ in history(client, run.run_id, "lr")] == [1, 2, 3]
    assert history(client, run.run_id, "step_loss") == [
        (step, pytest.approx(2.0 / step)) for step in (1, 6, 11, 16, 21, 26)
    ]
    assert [metric.timestamp for metric in client.get_metric_history(run.run_id, "images_per_second")] == [
        1_700_000_001_000,
        1_700_000_002_000,
        1_700_000_003_000,
    ]
    assert found.data.metrics["final_top1"] == 0.9
    assert found.data.metrics["final_best_epoch"] == 3
    assert "final_metrics" not in found.data.metrics
    listed = {info.path for info in client.list_artifacts(run.run_id)}
    assert listed == {"metrics.json", "plots", "tensorboard"}
    assert [info.path for info in client.list_artifacts(run.run_id, "plots")] == ["plots/confusion_matrix.png"]
    downloaded = Path(client.download_artifacts(run.run_id, "plots/confusion_matrix.png", str(tmp_path / "down")))
    assert downloaded.read_bytes() == png.read_bytes()
    downloaded = Path(client.download_artifacts(run.run_id, "tensorboard", str(tmp_path / "down")))
    assert (downloaded / "events.out.tfevents.1").read_bytes() == b"events"


@pytest.mark.slow
def test_a_restarted_job_logs_to_the_same_run(mlflow_server) -> None:
    tags = {RESUME_TAG: "s3://b/resumed", "finetune.model": "googlenet"}
    events = Events()
    first = MlflowRun(mlflow_server.uri, "resume", "resumed", {"epochs": "3", "seed": "1"}, tags, events.progress)
    for epoch in (1, 2):
        first.record(epoch_event(epoch))
    first.close(30)  # as if killed after epoch 2 (a killed job's run stays RUNNING: found all the same)
    second = MlflowRun(
        mlflow_server.uri, "resume", "resumed", {"epochs": "3", "seed": "2", "added": "yes"}, tags, events.progress
    )
    second.record(epoch_event(3))
    second.close(30)
    assert events.tracking() == []

    client = MlflowClient(mlflow_server.uri)
    run_id = second.run_id
    assert run_id is not None and run_id == first.run_id
    experiment = client.get_experiment_by_name("resume")
    assert experiment is not None
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert [step for step, _ in history(client, run_id, "train_loss")] == [1, 2, 3]
    found = client.get_run(run_id)
    assert found.data.params == {"epochs": "3", "seed": "1", "added": "yes"}  # MLflow never changes a param
    assert found.info.status == "FINISHED"


@pytest.mark.slow
def test_a_deleted_experiment_is_restored(mlflow_server) -> None:
    events = Events()
    tags = {RESUME_TAG: "s3://b/deleted"}
    first = MlflowRun(mlflow_server.uri, "deleted", "run", {}, tags, events.progress)
    first.record(epoch_event(1))
    first.close(30)
    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("deleted")
    assert experiment is not None
    client.delete_experiment(experiment.experiment_id)

    second = MlflowRun(mlflow_server.uri, "deleted", "run", {}, tags, events.progress)
    second.record(epoch_event(2))
    second.close(30)
    assert events.tracking() == ["tracking_restored"]
    assert client.get_experiment(experiment.experiment_id).lifecycle_stage == "active"
    run_id = second.run_id
    assert run_id is not None and run_id == first.run_id
    assert [step for step, _ in history(client, run_id, "train_loss")] == [1, 2]


@pytest.mark.slow
def test_a_rejected_call_is_dropped_and_the_rest_go_on(mlflow_server) -> None:
    events = Events()
    run = MlflowRun(mlflow_server.uri, "rejected", "run", {"bad key!": "1"}, {}, events.progress)
    run.record({"event": "epoch"})  # malformed: no epoch number
    run.record(epoch_event(1))
    run.close(30)
    dropped = events.named("tracking_dropped")
    assert [item["what"] for item in dropped] == ["params", "epoch None"]
    assert "INVALID_PARAMETER_VALUE" in dropped[0]["problem"]
    assert dropped[1]["problem"].startswith("KeyError")
    assert run.run_id is not None
    client = MlflowClient(mlflow_server.uri)
    assert history(client, run.run_id, "train_loss") == [(1, 1.0)]
    assert client.get_run(run.run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_an_outage_is_waited_out_and_the_backlog_arrives_in_order(own_mlflow_server) -> None:
    server = own_mlflow_server
    events = Events()
    run = MlflowRun(server.uri, "outage", "run", {"p": "1"}, {RESUME_TAG: "s3://b/outage"}, events.progress, 1.0)
    run.record(epoch_event(1))
    client = MlflowClient(server.uri)
    wait_until(lambda: run.run_id is not None and history(client, run.run_id, "train_loss"))
    assert run.run_id is not None

    server.stop()
    slowest = 0.0
    for epoch in range(2, 7):
        for step in range(epoch * 10, epoch * 10 + 10):
            started = time.perf_counter()
            run.record(step_event(step))
            slowest = max(slowest, time.perf_counter() - started)
        started = time.perf_counter()
        run.record(epoch_event(epoch))
        slowest = max(slowest, time.perf_counter() - started)
        time.sleep(0.3)  # epochs go on while the worker retries
    assert slowest < 0.05
    wait_until(lambda: events.named("tracking_retry"))
    assert events.named("tracking_retry")[0]["target"] == "mlflow"

    server.start()
    wait_until(lambda: events.named("tracking_resumed"))
    run.close(30)
    assert events.tracking() == ["tracking_retry", "tracking_resumed"]
    assert [step for step, _ in history(client, run.run_id, "train_loss")] == [1, 2, 3, 4, 5, 6]
    assert history(client, run.run_id, "eval_top5") == [(epoch, 1.0) for epoch in range(1, 7)]
    assert [step for step, _ in history(client, run.run_id, "step_loss")] == list(range(20, 70))
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_close_with_the_server_down_reports_what_is_unsent() -> None:
    events = Events()
    run = MlflowRun(closed_port(), "down", "run", {"p": "1"}, {RESUME_TAG: "s3://b/down"}, events.progress)
    for epoch in (1, 2, 3):
        run.record(epoch_event(epoch))
    started = time.monotonic()
    run.close(2.0)
    assert time.monotonic() - started < 4.0
    assert events.tracking() == ["tracking_retry", "tracking_unsent"]
    assert events.named("tracking_unsent")[0]["unsent"] == 5  # the run, its params and three epochs


def test_close_returns_while_a_request_hangs() -> None:
    """A server that accepts connections and never answers: one request waits for MLflow's timeout, close not."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        events = Events()
        run = MlflowRun(f"http://127.0.0.1:{silent.getsockname()[1]}", "hang", "run", {}, {}, events.progress)
        run.record(epoch_event(1))
        time.sleep(0.5)  # the run's setup is in flight
        started = time.monotonic()
        run.close(1.0)
        assert time.monotonic() - started < 3.0
    assert events.named("tracking_unsent")[0]["unsent"] == 2


def test_step_metrics_are_dropped_when_the_backlog_is_full(monkeypatch) -> None:
    monkeypatch.setattr(mlflow_run, "BACKLOG_LIMIT", 5)
    events = Events()
    run = MlflowRun(closed_port(), "full", "run", {}, {}, events.progress)
    for step in range(1, 11):
        run.record(step_event(step))
    run.record(epoch_event(1))
    run.record(epoch_event(2))
    run.close(0.5)
    unsent = events.named("tracking_unsent")[0]
    assert (unsent["unsent"], unsent["dropped_steps"]) == (7, 6)  # the run, 4 steps, both epochs


def test_importing_the_package_imports_no_mlflow() -> None:
    code = "import sys, job.tracking, job.tracking.mlflow_run; assert 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


@pytest.mark.slow
def test_metrics_queued_within_the_interval_go_in_one_request(mlflow_server, monkeypatch) -> None:
    """A progress window every few hundred milliseconds is not a request each: what waits is sent together (and
    everything at once on close), in order."""
    sent: list[int] = []
    real_log_batch = MlflowClient.log_batch

    def counted(self, run_id, metrics=(), params=(), tags=(), **kwargs):
        if metrics:
            sent.append(len(metrics))
        return real_log_batch(self, run_id, metrics=metrics, params=params, tags=tags, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", counted)
    monkeypatch.setattr("job.tracking.mlflow_run.METRICS_INTERVAL_SECONDS", 3600.0)
    events = Events()
    run = MlflowRun(mlflow_server.uri, "batched", "one", {}, {RESUME_TAG: "s3://b/batched"}, events.progress)
    steps = range(1, 201)
    for step in steps:
        run.record(step_event(step))
    run.record(epoch_event(1))
    run.close(60)
    client = MlflowClient(mlflow_server.uri)
    assert run.run_id is not None and events.tracking() == []
    assert history(client, run.run_id, "step_loss") == [(step, pytest.approx(2.0 / step)) for step in steps]
    assert history(client, run.run_id, "eval_top1") == [(1, pytest.approx(0.81))]
    # 400 step metrics and 7 of the epoch: the first event at once, the rest in batches of at most 1000
    assert sum(sent) == 407 and len(sent) <= 3 and max(sent) <= 1000
