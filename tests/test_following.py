"""What the launcher says about a Job on a cluster, through the real `kubernetes` client against the
wire-format server: pods in each waiting state with the reasons and messages a control plane gives,
scheduling, events, Kueue admission, deadlines and back-off limits, progress from the job's JSON lines; one
deadline for every wait, a time limit on every request; kubeconfig problems, strict field validation, a
catch-all and JSON errors; the quality gate checked before submitting, against the real S3 server."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
import yaml

from fakekube import SPEC, FakeKube, SilentServer, write_kubeconfig
from launcher.cli import main
from launcher.cluster import submit
from launcher.connection import connect
from launcher.errors import SpecError

LONG_AGO = "2026-11-27T10:00:00Z"


@pytest.fixture()
def kube(tmp_path, monkeypatch):
    fake = FakeKube().start()
    monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.setattr("launcher.cluster.RECONNECT_SECONDS", 0.05)
    monkeypatch.setattr("launcher.cluster.POLL_SECONDS", 0.2)
    yield fake
    fake.stop()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _job(condition: tuple[str, str, str] | None = None, suspend: bool = False, active: int = 0) -> dict:
    status: dict = {"active": active}
    if condition:
        kind, reason, message = condition
        status["conditions"] = [{"type": kind, "status": "True", "reason": reason, "message": message}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "tiny", "namespace": "ml", "labels": {"app.kubernetes.io/managed-by": "launcher"}},
        "spec": {"suspend": suspend, "template": {"spec": {"containers": []}}},
        "status": status,
    }


def _pod(phase: str = "Pending", created: str = LONG_AGO, **status: object) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tiny-abcde", "namespace": "ml", "creationTimestamp": created},
        "status": {"phase": phase, **status},
    }


def _container(state: dict) -> dict:
    """A container status as the kubelet reports it."""
    return {
        "name": "finetune",
        "image": "registry.example.com/finetune:1",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": state,
    }


def _waiting(reason: str, message: str, created: str = LONG_AGO) -> dict:
    return _pod(created=created, containerStatuses=[_container({"waiting": {"reason": reason, "message": message}})])


def _error_line(capsys) -> str:
    error = capsys.readouterr().err.strip().splitlines()
    assert error, "nothing on stderr"
    return error[-1]


PULL = 'Back-off pulling image "registry.example.com/finetune:1"'


def test_an_image_that_cannot_be_pulled_ends_the_wait_as_stuck(kube, capsys):
    kube.store_job("ml", _job(active=1))
    kube.pods["tiny"] = [_waiting("ImagePullBackOff", PULL)]
    assert main(["status", "tiny"]) == 6
    assert capsys.readouterr().out.strip().startswith("tiny (namespace ml): Pending: image pull failing")
    assert main(["wait", "tiny"]) == 6
    line = _error_line(capsys)
    assert line.startswith("error: tiny (namespace ml): Pending: image pull failing") and PULL in line
    assert "stuck" in line


def test_a_young_pull_failure_is_waited_for_until_the_deadline(kube, capsys):
    kube.store_job("ml", _job(active=1))
    kube.pods["tiny"] = [_waiting("ErrImagePull", "rpc error: code = NotFound", created=_now())]
    started = time.monotonic()
    assert main(["wait", "tiny", "--timeout", "1"]) == 4
    assert time.monotonic() - started < 10
    line = _error_line(capsys)
    assert "timed out after 1 s; last seen: tiny (namespace ml): Pending: image pull failing" in line


def test_a_missing_secret_is_stuck_at_once(kube, capsys):
    kube.store_job("ml", _job(active=1))
    kube.pods["tiny"] = [_waiting("CreateContainerConfigError", 'secret "s3-credentials" not found', created=_now())]
    assert main(["wait", "tiny", "--output", "json"]) == 6
    report = json.loads(capsys.readouterr().out)
    assert report["state"] == "Pending" and report["stuck"] and report["exit"] == 6
    assert report["line"] == 'CreateContainerConfigError: secret "s3-credentials" not found'


def test_unschedulable_shows_the_schedulers_message(kube, capsys):
    kube.store_job("ml", _job(active=1))
    message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available."
    kube.pods["tiny"] = [
        _pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}])
    ]
    assert main(["status", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == f"tiny (namespace ml): Pending: Unschedulable: {message}"
    assert main(["wait", "tiny", "--timeout", "0.5"]) == 4  # a node may still come: not stuck
    assert f"last seen: tiny (namespace ml): Pending: Unschedulable: {message}" in _error_line(capsys)


def test_a_job_not_admitted_by_kueue(kube, capsys):
    job = kube.store_job("ml", _job(suspend=True))
    kube.workloads = [
        {
            "apiVersion": "kueue.x-k8s.io/v1beta1",
            "kind": "Workload",
            "metadata": {"name": "job-tiny-1a2b3", "labels": {"kueue.x-k8s.io/job-uid": job["metadata"]["uid"]}},
            "spec": {"queueName": "team-a"},
            "status": {
                "conditions": [
                    {
                        "type": "QuotaReserved",
                        "status": "False",
                        "reason": "Pending",
                        "message": "couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu "
                        "in flavor a100, 2 more needed",
                    }
                ]
            },
        }
    ]
    assert main(["status", "tiny"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("tiny (namespace ml): Pending: waiting for Kueue admission in queue team-a: couldn't")
    kube.workloads = None  # no Kueue in the cluster: a suspended Job says so
    assert main(["status", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == "tiny (namespace ml): Suspended: suspended (spec.suspend is true)"


def test_a_quota_refusal_is_read_from_the_jobs_events(kube, capsys):
    kube.store_job("ml", _job())
    quota = 'Error creating: pods "tiny-x" is forbidden: exceeded quota: gpus, requested: nvidia.com/gpu=1'
    kube.events = [
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "tiny.1"},
            "involvedObject": {"kind": "Job", "name": "tiny", "namespace": "ml"},
            "type": "Warning",
            "reason": "FailedCreate",
            "message": quota,
            "lastTimestamp": LONG_AGO,
        }
    ]
    assert main(["status", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == f"tiny (namespace ml): Pending: FailedCreate: {quota}"


def test_a_deadline_exceeded_is_stuck_and_a_back_off_limit_names_the_exit_code(kube, capsys):
    kube.store_job("ml", _job(("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")))
    assert main(["wait", "tiny"]) == 6
    assert "Failed: DeadlineExceeded: Job was active longer than specified deadline" in _error_line(capsys)
    kube.store_job("ml", _job(("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")))
    kube.pods["tiny"] = [
        _pod(
            "Failed",
            containerStatuses=[
                _container(
                    {
                        "terminated": {
                            "exitCode": 3,
                            "reason": "Error",
                            "message": '{"event": "start"}\nerror: storage http://minio:9000 cannot be reached\n',
                        }
                    }
                )
            ],
        )
    ]
    assert main(["wait", "tiny"]) == 1
    assert _error_line(capsys) == (
        "error: tiny (namespace ml): Failed: BackoffLimitExceeded: exit code 3 (hub or storage unreachable "
        "(retry)): error: storage http://minio:9000 cannot be reached"
    )


def _progress_lines(epochs_done: int) -> str:
    lines = [{"event": "start", "epochs": 8, "first_epoch": 1, "steps_per_epoch": 10}]
    for epoch in range(1, epochs_done + 1):
        record = {"epoch": epoch, "loss": 0.5, "train_accuracy": 0.8, "seconds": 30.0}
        lines.append({"event": "epoch", **record, "eval": {"top1": 0.81234567, "top5": 1.0}})
    lines.append(
        {
            "event": "step",
            "epoch": epochs_done + 1,
            "step": epochs_done * 10 + 5,
            "loss": 0.41234567,
            "accuracy": 0.8765432,
            "images_per_second": 123.456,
        }
    )
    return "\n".join(json.dumps(line) for line in lines) + "\n"


def test_running_shows_progress_and_succeeded_the_summary(kube, capsys):
    kube.store_job("ml", _job(active=1))
    kube.pods["tiny"] = [_pod("Running")]
    kube.log_text["tiny-abcde"] = _progress_lines(2)
    assert main(["status", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == (
        "tiny (namespace ml): Running: epoch 3 of 8, loss 0.4123, accuracy 0.877, eval top-1 0.812, 123 images/s, "
        "ETA 2m45s"
    )
    kube.store_job("ml", _job(("Complete", "", "")))
    kube.pods["tiny"] = [_pod("Succeeded")]
    summary = {"top1": 0.9312, "top5": 1.0, "best_top1": 0.94, "best_epoch": 7, "metrics": "s3://b/out/metrics.json"}
    kube.log_text["tiny-abcde"] = _progress_lines(8) + json.dumps(summary) + "\n"
    assert main(["status", "tiny", "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["state"] == "Succeeded" and report["summary"] == summary
    assert report["line"] == "top-1 0.931, best top-1 0.94 at epoch 7, metrics in s3://b/out/metrics.json"


def test_list_shows_each_jobs_phase(kube, capsys):
    kube.store_job("ml", _job(active=1))
    kube.pods["tiny"] = [_waiting("ImagePullBackOff", PULL)]
    assert main(["list"]) == 0
    row = capsys.readouterr().out.strip()
    assert row.startswith("tiny") and "Pending" in row and PULL in row


def test_submit_follow_honours_the_timeout_when_no_pod_ever_starts(kube, tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    started = time.monotonic()
    assert main(["submit", str(path), "--follow", "--timeout", "1.5"]) == 4
    assert time.monotonic() - started < 15
    err = capsys.readouterr().err
    assert "Job/tiny, NetworkPolicy/tiny created in namespace ml (context fake)" in err
    assert (
        err.strip().splitlines()[-1].startswith("error: timed out after 1.5 s; last seen: tiny (namespace ml): Pending")
    )


def test_submit_follow_ends_when_the_pod_never_starts(kube, tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    kube.pods["tiny"] = [_waiting("InvalidImageName", 'Failed to apply default image tag "Bad": invalid reference')]
    assert main(["submit", str(path), "--follow"]) == 6
    assert "Pending: InvalidImageName: Failed to apply default image tag" in _error_line(capsys)


def test_logs_json_lines(kube, capsys):
    kube.pods["tiny"] = [_pod("Succeeded")]
    kube.log_sessions = [[b'2026-11-27T10:00:01.000000001Z {"event": "start"}\n', b"2026-11-27T10:00:02Z plain\n"]]
    assert main(["logs", "tiny", "--output", "json"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [
        {"log": '{"event": "start"}'},
        {"log": "plain"},
    ]


def test_missing_jobs_name_the_namespace_in_text_and_json(kube, capsys):
    assert main(["status", "absent"]) == 3
    assert _error_line(capsys) == (
        "error: job absent not found in namespace ml (context fake); pass -n NAMESPACE if it was submitted elsewhere"
    )
    assert main(["cancel", "absent", "-n", "other", "--output", "json"]) == 3
    error = json.loads(capsys.readouterr().out)
    assert error["exit"] == 3 and "not found in namespace other" in error["error"]


def test_strict_field_validation_answers_400_and_is_a_spec_error(kube):
    job = _job()
    job["spec"]["template"]["spec"] = {
        "containers": [{"name": "finetune", "image": "finetune:1"}],
        "tolerations": [{"key": "gpu", "opertor": "Exists"}],
    }
    with pytest.raises(SpecError) as caught:
        submit(connect(None, None, None), [job], dry_run=False)
    assert 'strict decoding error: unknown field "spec.template.spec.tolerations[0].opertor"' in str(caught.value)
    assert caught.value.exit_code == 2 and not kube.jobs


def test_a_server_that_never_answers_ends_with_exit_3(tmp_path, monkeypatch, capsys):
    silent = SilentServer()
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", silent.url)))
    try:
        started = time.monotonic()
        assert main(["list", "--request-timeout", "1"]) == 3
        assert time.monotonic() - started < 15
    finally:
        silent.stop()
    line = _error_line(capsys)
    assert line.startswith(f"error: the API server {silent.url} did not answer") and "--request-timeout" in line


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"apiVersion: v1\nclusters: [\n  - name: x\n", "is not valid YAML at line"),
        (b"just a string\n", "is not a kubeconfig (a str, not a mapping"),
        (bytes(range(256)), "is not text (a binary file?)"),
        (b"apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n", "cannot be used"),
    ],
)
def test_kubeconfig_problems_are_one_line_with_exit_2(tmp_path, monkeypatch, capsys, content, fragment):
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert main(["list"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"error: kubeconfig {path} ") and fragment in error


def test_a_missing_kubeconfig_and_an_unknown_context(kube, tmp_path, capsys):
    assert main(["list", "--kubeconfig", str(tmp_path / "absent")]) == 2
    assert "does not exist; pass --kubeconfig PATH or set KUBECONFIG" in _error_line(capsys)
    assert main(["list", "--context", "prod"]) == 2
    assert _error_line(capsys) == "error: context 'prod' is not in the kubeconfig (it has: fake, other)"


def test_an_unexpected_error_is_one_line_and_its_traceback_comes_with_debug(kube, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr("launcher.cluster.list_jobs", broken)
    assert main(["list"]) == 1
    assert capsys.readouterr().err == (
        "error: unexpected RuntimeError: something nobody expected; rerun with --debug for the traceback\n"
    )
    assert main(["--debug", "list"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_yaml_syntax_error_keeps_its_line_and_column(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text("name: tiny\nimage: [unclosed\n")
    assert main(["render", str(path), "--output", "json"]) == 2
    error = json.loads(capsys.readouterr().out)
    assert error["exit"] == 2 and f"spec {path}: line 3, column 1:" in error["error"]


# --- the quality gate before submitting, against the real S3 server at an endpoint given only in the spec ---


@pytest.fixture()
def gated(kube, tmp_path, s3_server, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # the spec's storage.endpoint alone leads there
    bucket = s3_server.new_bucket()

    def spec(**change: object):
        path = tmp_path / "spec.yaml"
        document = {
            **SPEC,
            "output": f"s3://{bucket}/run",
            "storage": {"endpoint": s3_server.endpoint, "region": "us-east-1"},
            **change,
        }
        path.write_text(yaml.safe_dump(document))
        return str(path)

    return spec


def test_an_unknown_metric_is_refused_before_submitting(gated, kube, capsys):
    assert main(["submit", gated(), "--require", "topl>=0.9"]) == 2
    assert "metrics.json's summary has no topl (it has: top1, top5" in _error_line(capsys)
    assert not [request for request in kube.requests if request[0] == "POST"]


def test_no_credentials_here_is_found_before_submitting(gated, kube, monkeypatch, tmp_path, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert main(["submit", gated(), "--require", "top1>=0.9"]) == 2
    assert "this machine has no S3 credentials" in _error_line(capsys)
    assert not kube.jobs


def test_a_missing_bucket_and_an_unreachable_store_are_found_before_submitting(gated, kube, capsys):
    assert main(["submit", gated(output="s3://no-such-bucket/run"), "--require", "top1>=0.9"]) == 2
    line = _error_line(capsys)
    assert "bucket no-such-bucket" in line and "the bucket does not exist" in line
    storage = {"endpoint": "http://127.0.0.1:9", "region": "us-east-1"}
    assert main(["submit", gated(storage=storage), "--require", "top1>=0.9"]) == 3
    assert "cannot be reached from this machine" in _error_line(capsys)
    assert not kube.jobs


def test_the_gate_reads_metrics_through_the_specs_endpoint(gated, kube, s3_server, capsys):
    path = gated()
    bucket = yaml.safe_load(open(path))["output"].split("/")[2]
    s3_server.client().put_object(
        Bucket=bucket, Key="run/metrics.json", Body=json.dumps({"summary": {"top1": 0.93}}).encode()
    )
    kube.watch_sessions = [[("event", "MODIFIED", _job(("Complete", "", "")))]]  # the watch stores it
    assert main(["submit", path, "--require", "top1>=0.9"]) == 0
    assert "quality gate passed: top1=0.93" in capsys.readouterr().out
