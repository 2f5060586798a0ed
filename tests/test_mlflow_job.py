"""`python -m job` logging to a real MLflow tracking server (tests/mlflowserver.py: `mlflow server` on 127.0.0.1,
SQLite store, artefacts through the server): what arrives, and a server stopped in the middle of the run or never
coming back, which neither fails nor changes the training."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mlflow.tracking import MlflowClient

from conftest import assert_same_training, environment, metrics_of
from jobprocess import JobProcess, event
from mlflowserver import MlflowServer, running_server

pytestmark = pytest.mark.slow  # trains with MindSpore and runs an MLflow server


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    yield from running_server(tmp_path_factory.mktemp("mlflow"))


def _only_run(uri: str, experiment: str):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    (run,) = client.search_runs([found.experiment_id])
    return client, run


def _values(client: MlflowClient, run_id: str, metric: str) -> list[tuple[int, float]]:
    return [(item.step, item.value) for item in client.get_metric_history(run_id, metric)]


def test_a_run_logs_its_settings_epochs_and_results(hub_and_data, mlflow_server, tmp_path):
    output = str(tmp_path / "out")
    job = JobProcess(
        environment(hub_and_data, output, FT_MLFLOW_TRACKING_URI=mlflow_server.uri, FT_MLFLOW_EXPERIMENT="complete")
    )
    assert job.finish() == 0, job.stderr[-2000:]
    metrics = metrics_of(output)
    client, run = _only_run(mlflow_server.uri, "complete")
    assert run.info.status == "FINISHED" and run.info.run_name == "out"
    assert run.data.tags["finetune.output"] == output
    assert run.data.params["lr_max"] == "0.02" and run.data.params["epochs"] == "3"
    history = metrics["history"]
    assert _values(client, run.info.run_id, "eval_top1") == [
        (r["epoch"], pytest.approx(r["eval"]["top1"])) for r in history
    ]
    assert _values(client, run.info.run_id, "train_loss") == [(r["epoch"], pytest.approx(r["loss"])) for r in history]
    steps = [line["step"] for line in job.events("step")]
    assert [step for step, _ in _values(client, run.info.run_id, "step_loss")] == steps
    assert run.data.metrics["final_top1"] == pytest.approx(metrics["summary"]["top1"])
    names = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "classes.json", "plots", "tensorboard"} <= names
    assert not job.events("tracking_retry")


def test_a_server_away_in_the_middle_changes_nothing_and_gets_the_backlog(hub_and_data, uninterrupted, tmp_path):
    server = MlflowServer(tmp_path / "mlflow")
    server.start()
    output = str(tmp_path / "out")
    settings = environment(
        hub_and_data, output, FT_MLFLOW_TRACKING_URI=server.uri, FT_MLFLOW_FLUSH_TIMEOUT_SECONDS="180"
    )
    try:
        job = JobProcess(settings)
        job.wait_for(event("epoch", epoch=1))
        server.stop()
        job.wait_for(event("epoch", epoch=3))  # epochs 2 and 3 and their windows wait in the backlog
        server.start()
        assert job.finish() == 0, job.stderr[-2000:]
        client, run = _only_run(server.uri, "mindspore-finetune")
        epochs_logged = [step for step, _ in _values(client, run.info.run_id, "eval_top1")]
        steps_logged = [step for step, _ in _values(client, run.info.run_id, "step_loss")]
    finally:
        server.stop()
    assert len(job.events("tracking_retry")) == 1 and len(job.events("tracking_resumed")) == 1
    assert not job.events("tracking_unsent")
    metrics = metrics_of(output)
    assert_same_training(metrics["history"], uninterrupted.metrics["history"], "MLflow away during the run")
    assert epochs_logged == [1, 2, 3]
    assert steps_logged == [line["step"] for line in job.events("step")]
    assert run.info.status == "FINISHED"


def test_a_server_that_never_answers_costs_the_run_only_the_flush_timeout(hub_and_data, tmp_path):
    server = MlflowServer(tmp_path / "mlflow")  # a free port nothing listens on
    output = str(tmp_path / "out")
    job = JobProcess(
        environment(hub_and_data, output, FT_MLFLOW_TRACKING_URI=server.uri, FT_MLFLOW_FLUSH_TIMEOUT_SECONDS="2")
    )
    assert job.finish() == 0, job.stderr[-2000:]
    (unsent,) = job.events("tracking_unsent")
    assert unsent["target"] == "mlflow"
    assert job.ended is not None and job.ended - unsent["time"] < 5  # the job ended right after giving up
    assert metrics_of(output)["summary"]["epochs"] == 3
