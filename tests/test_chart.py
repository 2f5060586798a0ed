"""The Helm chart with the real Helm library (helm-python-sdk): strict lint, renders validated against the
Kubernetes schemas, the values schema, and one contract with the launcher."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helm_python.chart import Chart, lint

from job.config import known_variables, required_variables
from launcher.cli import KUBERNETES_VERSIONS
from launcher.render import manifests
from launcher.spec import JobSpec
from launcher.validate import validate_manifests

CHART = Path(__file__).resolve().parents[1] / "charts" / "finetune"
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
REQUIRED = {"train_data": "s3://data/train", "eval_data": "s3://data/eval", "output": "s3://models/run"}
WARNING = 2  # Helm's lint severities: 1 info, 2 warning, 3 error


def render_chart(values: dict, revision: int = 1) -> list[dict]:
    rendered = Chart.load(str(CHART)).render(values, name="retrain", namespace="ml", revision=revision,
                                             is_install=True)
    return [document for path, text in rendered.items() if path.endswith(".yaml") and text.strip()
            for document in yaml.safe_load_all(text) if document]


def _values(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("values", [REQUIRED, *VALUES_FILES], ids=lambda v: getattr(v, "name", "required-only"))
def test_strict_lint(values):
    result = lint(str(CHART), values if isinstance(values, dict) else _values(values), strict=True)
    assert result["errors"] == [] and not [m for m in result["messages"] if m["severity"] >= WARNING]


@pytest.mark.parametrize("values", [REQUIRED, *VALUES_FILES], ids=lambda v: getattr(v, "name", "required-only"))
def test_renders_are_valid_for_every_supported_kubernetes(values):
    documents = render_chart(values if isinstance(values, dict) else _values(values))
    assert documents
    assert validate_manifests(documents, KUBERNETES_VERSIONS) == []


def test_values_files_render_what_they_ask_for():
    kinds = {path.name: sorted(document["kind"] for document in render_chart(_values(path)))
             for path in VALUES_FILES}
    assert kinds["cronjob-values.yaml"] == ["CronJob", "Pod"]
    assert kinds["serviceaccount-values.yaml"] == ["Job", "Pod", "ServiceAccount"]
    cron = next(d for d in render_chart(_values(CHART / "ci" / "cronjob-values.yaml")) if d["kind"] == "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and cron["spec"]["successfulJobsHistoryLimit"] == 3
    ascend = next(d for d in render_chart(_values(CHART / "ci" / "accelerators-values.yaml")) if d["kind"] == "Job")
    limits = ascend["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["huawei.com/Ascend910"] == 1


def test_several_workers_under_a_cronjob_find_pod_zero_in_the_pod():
    documents = render_chart(_values(CHART / "ci" / "distributed-cronjob-values.yaml"))
    assert sorted(document["kind"] for document in documents) == ["CronJob", "Pod", "Service"]
    service = next(d for d in documents if d["kind"] == "Service")
    cron = next(d for d in documents if d["kind"] == "CronJob")
    job = cron["spec"]["jobTemplate"]["spec"]
    pod = job["template"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 2, 2)
    assert pod["spec"]["subdomain"] == service["metadata"]["name"] == "retrain-finetune-workers"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    env = _env(pod["spec"]["containers"][0])
    assert (env["FT_WORKERS"], env["FT_DEVICES_PER_WORKER"], env["FT_WORKER_SERVICE"]) == (
        "2", "2", "retrain-finetune-workers")
    assert not any("-0." in str(value) for value in env.values())  # the Job's name is only known in the pod


def test_upgrades_create_a_new_job_instead_of_patching_an_immutable_one():
    first = next(d for d in render_chart(REQUIRED, revision=1) if d["kind"] == "Job")
    second = next(d for d in render_chart(REQUIRED, revision=2) if d["kind"] == "Job")
    assert first["metadata"]["name"] == "retrain-finetune-r1" and second["metadata"]["name"] == "retrain-finetune-r2"


@pytest.mark.parametrize("values, problem", [
    ({**REQUIRED, "epochs": 5}, "epochs"),  # a setting misplaced at the top level: a typo
    ({**REQUIRED, "retries": "six"}, "retries"),
    ({**REQUIRED, "settings": {"workers": 2}}, "workers"),  # a top-level value: the chart sets FT_WORKERS
    ({**REQUIRED, "workers": 0}, "workers"),
    ({**REQUIRED, "resources": {"memory": "lots"}}, "memory"),
    ({**REQUIRED, "resources": {"gpu": 1}}, "gpu"),
    ({**REQUIRED, "env": {"AWS_SECRET_ACCESS_KEY": "inline"}}, "AWS_SECRET_ACCESS_KEY"),
])
def test_schema_rejects_typos_and_wrong_types(values, problem):
    result = lint(str(CHART), values, strict=True)
    assert result["errors"] and problem in " ".join(str(error) for error in result["errors"])


def test_missing_required_values_stop_the_render():
    with pytest.raises(Exception, match="train_data is required"):
        render_chart({"eval_data": "x", "output": "y"})


def _container(documents: list[dict]) -> tuple[dict, dict]:
    job = next(document for document in documents if document["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def _env(container: dict) -> dict:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


@pytest.mark.parametrize("values_file", [path for path in VALUES_FILES if "cronjob" not in path.name],
                         ids=lambda path: path.name)
def test_chart_and_launcher_render_the_same_container(values_file):
    values = {**_values(values_file), "cronjob": {"enabled": False}}
    spec = JobSpec.model_validate({"name": "retrain-finetune", "namespace": "ml", "image": "mindspore-finetune:0.1.0",
                                   "model": "mindspore/1.6/googlenet_cifar10",
                                   **{key: value for key, value in values.items()
                                      if key not in ("cronjob", "create_service_account")}})
    chart_pod, chart_container = _container(render_chart(values))
    launcher_pod, launcher_container = _container(manifests(spec))
    assert chart_container["command"] == launcher_container["command"]
    assert _env(chart_container) == _env(launcher_container)
    assert chart_container["securityContext"] == launcher_container["securityContext"]
    assert chart_container["resources"] == launcher_container["resources"]
    assert chart_container["volumeMounts"] == launcher_container["volumeMounts"]
    for key in ("securityContext", "automountServiceAccountToken", "restartPolicy", "volumes",
                "terminationGracePeriodSeconds"):
        assert chart_pod[key] == launcher_pod[key], key
    chart_job = next(d for d in render_chart(values) if d["kind"] == "Job")
    launcher_job = next(d for d in manifests(spec) if d["kind"] == "Job")
    for key in ("podFailurePolicy", "completionMode", "completions", "parallelism", "backoffLimit"):
        assert chart_job["spec"].get(key) == launcher_job["spec"].get(key), key
    assert chart_pod.get("subdomain") == launcher_pod.get("subdomain")
    chart_services = [d["spec"] for d in render_chart(values) if d["kind"] == "Service"]
    assert chart_services == [d["spec"] | {"selector": chart_services[0]["selector"]}
                              for d in manifests(spec) if d["kind"] == "Service"]
    variables = {name for name in _env(chart_container) if name.startswith("FT_")}
    assert variables <= set(known_variables()) and set(required_variables()) <= variables

