"""The quality gate of `launcher submit --require`: metrics.json read from a real S3 server after the Job
succeeded (the Job's API traffic goes to the local Kubernetes wire-format server)."""

from __future__ import annotations

import json

import pytest
import yaml

from fakekube import FakeKube
from launcher.cli import main


@pytest.fixture()
def kube(tmp_path, monkeypatch):
    fake = FakeKube().start()
    monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
    complete = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "retrain", "namespace": "ml"},
        "spec": {"template": {"spec": {"containers": []}}},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }
    fake.watch_sessions = [[("event", "MODIFIED", complete)]]
    yield fake
    fake.stop()


@pytest.fixture()
def submit(tmp_path, s3_server):
    bucket = s3_server.new_bucket()

    def run(require: list[str], metrics: dict | None) -> int:
        output = f"s3://{bucket}/run-{len(require)}-{bool(metrics)}"
        if metrics is not None:
            s3_server.client().put_object(
                Bucket=bucket, Key=output.split("/", 3)[3] + "/metrics.json", Body=json.dumps(metrics).encode()
            )
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "retrain",
                    "namespace": "ml",
                    "image": "finetune:1",
                    "model": "mindspore/1.6/googlenet_cifar10",
                    "train_data": "s3://d/train",
                    "eval_data": "s3://d/eval",
                    "output": output,
                }
            )
        )
        arguments = ["submit", str(spec)]
        for requirement in require:
            arguments += ["--require", requirement]
        return main(arguments)

    return run


def test_gate_passes(kube, submit, capsys):
    assert submit(["top1>=0.9", "top5>=0.99"], {"summary": {"top1": 0.93, "top5": 1.0}}) == 0
    assert "quality gate passed: top1=0.93, top5=1" in capsys.readouterr().out


def test_gate_below_the_bar(kube, submit, capsys):
    assert submit(["top1>=0.95"], {"summary": {"top1": 0.93, "top5": 1.0}}) == 5
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == "error: the job succeeded but the model is below the bar: top1 is 0.93, the bar is top1>=0.95"


def test_gate_with_metrics_missing(kube, submit, capsys):
    assert submit(["top1>=0.9"], None) == 5
    assert "no metrics.json in s3://" in capsys.readouterr().err
