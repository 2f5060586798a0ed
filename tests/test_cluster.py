"""The launcher against a local server speaking the Kubernetes wire format, through the real `kubernetes`
client: create and dry run, refusals with the server's message, watches across a dropped connection and a
410, log streams that reconnect, kubeconfig contexts and in-cluster configuration."""

from __future__ import annotations

import json

import pytest
import yaml

from fakekube import SPEC, FakeKube
from launcher.cli import main
from launcher.connection import connect


@pytest.fixture()
def kube(tmp_path, monkeypatch):
    fake = FakeKube().start()
    monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.setattr("launcher.cluster.RECONNECT_SECONDS", 0.05)
    yield fake
    fake.stop()


@pytest.fixture()
def spec_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def _job(state: str | None = None, active: int = 0) -> dict:
    status: dict[str, object] = {"active": active}
    if state:
        status["conditions"] = [{"type": state, "status": "True", "reason": "Test"}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "tiny", "namespace": "ml"},
        "spec": {"template": {"spec": {"containers": []}}},
        "status": status,
    }


def test_submit_creates_the_job(kube, spec_file, capsys):
    assert main(["submit", str(spec_file), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "created": ["Job/tiny", "NetworkPolicy/tiny"],
        "namespace": "ml",
        "dry_run": False,
    }
    stored = kube.jobs[("ml", "tiny")]
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "finetune:1"
    assert ("POST", "/apis/batch/v1/namespaces/ml/jobs?fieldValidation=Strict") in kube.requests
    policy = kube.network_policies[("ml", "tiny")]
    assert policy["metadata"]["ownerReferences"][0]["uid"] == stored["metadata"]["uid"]  # deleted with the Job


def test_predict_creates_the_runs_predict_job(kube, spec_file, capsys):
    arguments = ["--images", "s3://b/incoming", "--to", "s3://b/predictions/1", "--top-k", "3"]
    assert main(["predict", str(spec_file), *arguments, "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == ["Job/tiny-predict", "NetworkPolicy/tiny-predict"]
    container = kube.jobs[("ml", "tiny-predict")]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "job"] and container["args"] == ["predict"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert (env["FT_PREDICT_RUN"], env["FT_PREDICT_IMAGES"], env["FT_PREDICT_TO"], env["FT_PREDICT_TOP_K"]) == (
        SPEC["output"],
        "s3://b/incoming",
        "s3://b/predictions/1",
        "3",
    )
    assert (
        container["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["readOnlyRootFilesystem"]
    )
    # without the images or a destination nothing is sent
    assert main(["predict", str(spec_file), "--images", "s3://b/incoming"]) == 2
    assert "predict.to: required with mode: predict" in capsys.readouterr().err
    assert set(kube.jobs) == {("ml", "tiny-predict")}


def test_a_multi_pod_job_owns_its_service(kube, tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "workers": 2}))
    assert main(["submit", str(path), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == ["Job/tiny", "Service/tiny-workers", "NetworkPolicy/tiny"]
    job, service = kube.jobs[("ml", "tiny")], kube.services[("ml", "tiny-workers")]
    assert service["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "tiny", "uid": job["metadata"]["uid"]}
    ]  # deleted with the Job


def test_dry_run_is_server_side_and_creates_nothing(kube, spec_file, capsys):
    assert main(["submit", str(spec_file), "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    assert ("POST", "/apis/batch/v1/namespaces/ml/jobs?dryRun=All&fieldValidation=Strict") in kube.requests
    assert not kube.jobs


@pytest.mark.parametrize(
    "change, code_text, message",
    [
        ({}, "409 Conflict", 'jobs.batch "tiny" already exists'),
        ({"namespace": "forbidden"}, "403 Forbidden", 'cannot create resource "jobs"'),
        ({"name": "invalid-job"}, "422 Unprocessable Entity", "containers[0].image: Required value"),
    ],
)
def test_refusals_carry_the_servers_message(kube, tmp_path, capsys, change, code_text, message):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **change}))
    if not change:
        assert main(["submit", str(path)]) == 0
    capsys.readouterr()
    assert main(["submit", str(path)]) == 3
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and code_text in error and message in error


def test_wait_survives_a_dropped_watch_and_410_gone(kube, capsys):
    kube.store_job("ml", _job(active=1))
    kube.watch_sessions = [
        [("event", "MODIFIED", _job(active=1)), ("drop",)],
        [("gone",)],
        [("event", "MODIFIED", _job("Complete"))],
    ]
    assert main(["wait", "tiny", "--timeout", "30", "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["name"], report["namespace"], report["state"], report["exit"]) == ("tiny", "ml", "Succeeded", 0)
    watches = [path for method, path in kube.requests if "watch=" in path]
    assert len(watches) == 3  # watched again after the dropped connection and after the 410


def test_failed_job_and_timeout(kube, capsys):
    kube.store_job("ml", _job("Failed"))
    assert main(["wait", "tiny"]) == 1
    kube.store_job("ml", _job(active=1))
    assert main(["wait", "tiny", "--timeout", "1"]) == 4
    assert "error: timed out after 1 s; last seen: tiny (namespace ml): Pending" in capsys.readouterr().err


def test_status_list_and_cancel(kube, capsys):
    kube.store_job(
        "ml",
        {
            **_job(active=1),
            "metadata": {"name": "tiny", "namespace": "ml", "labels": {"app.kubernetes.io/managed-by": "launcher"}},
        },
    )
    kube.pods["tiny"] = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tiny-r"}, "status": {"phase": "Running"}}
    ]
    assert main(["status", "tiny", "--output", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["state"], found["active"], found["namespace"]) == ("Running", 1, "ml")
    assert main(["list", "--output", "json"]) == 0
    assert [job["name"] for job in json.loads(capsys.readouterr().out)["jobs"]] == ["tiny"]
    assert main(["cancel", "tiny"]) == 0 and not kube.jobs
    assert main(["cancel", "tiny"]) == 3
    assert "job tiny not found in namespace ml (context fake)" in capsys.readouterr().err


def test_logs_reconnect_without_duplicates_and_decode_split_utf8(kube, capsys):
    kube.pods["tiny"] = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "tiny-abcde", "creationTimestamp": "2026-11-27T10:00:00Z"},
            "status": {"phase": "Succeeded"},
        }
    ]
    first = "2026-11-27T10:00:01.000000001Z epoch 1 caf\u00e9\n".encode()
    second = "2026-11-27T10:00:02.000000002Z epoch 2 \u6f22\u5b57\n".encode()
    third = b"2026-11-27T10:00:03.000000003Z done\n"
    split = first.index("\u00e9".encode()) + 1  # inside the two bytes of é
    kube.log_sessions = [
        [first[:split], first[split:], second[:-3], "drop"],  # drops mid-line
        [first, second, third],
    ]  # the server resends from before the break
    assert main(["logs", "tiny", "--follow"]) == 0
    assert capsys.readouterr().out.splitlines() == ["epoch 1 caf\u00e9", "epoch 2 \u6f22\u5b57", "done"]


def test_kubeconfig_context_and_namespace_flags(kube):
    assert connect(None, None, None).namespace == "ml"
    assert connect(None, "other", None).namespace == "other"
    assert connect(None, "other", "explicit").namespace == "explicit"


def test_in_cluster_configuration_from_a_service_account_directory(tmp_path, monkeypatch):
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("in-cluster-token")
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (account / "namespace").write_text("training\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    connection = connect(None, None, None, service_account_dir=account)
    assert connection.namespace == "training"
    configuration = connection.api.configuration
    assert configuration.host == "https://10.0.0.1:443"
    header = configuration.auth_settings()["BearerToken"]  # what every request will carry
    assert (header["key"], header["value"].lower()) == ("authorization", "bearer in-cluster-token")
    assert configuration.ssl_ca_cert == str(account / "ca.crt")


def test_submit_wait_follows_the_job_to_its_end(kube, spec_file, capsys):
    kube.pods["tiny"] = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tiny-x"}, "status": {"phase": "Succeeded"}}
    ]
    kube.log_sessions = [[b'2026-11-27T10:00:01.000000001Z {"top1": 0.93}\n']]
    kube.watch_sessions = [[("event", "MODIFIED", _job("Complete"))]]
    assert main(["submit", str(spec_file), "--follow", "--output", "json"]) == 0
    log, result = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert log == {"log": '{"top1": 0.93}'}
    assert (result["state"], result["exit"]) == ("Succeeded", 0)


def test_following_waits_for_the_pod_to_start(kube, capsys):
    kube.store_job("ml", _job(active=1))
    pending = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tiny-p"}, "status": {"phase": "Pending"}}
    kube.pods["tiny"] = [pending]
    kube.log_sessions = [[b"2026-11-27T10:00:01.000000001Z started\n"]]

    def start_later() -> None:
        import time

        time.sleep(0.3)
        kube.pods["tiny"] = [{**pending, "status": {"phase": "Succeeded"}}]

    import threading

    threading.Thread(target=start_later).start()
    assert main(["logs", "tiny", "-f"]) == 0
    assert capsys.readouterr().out.splitlines() == ["started"]
    kube.pods["tiny"] = [pending]
    assert main(["logs", "tiny"]) == 3  # without -f there is nothing to show yet
    assert "job tiny in namespace ml (context fake) has no started pod yet" in capsys.readouterr().err
