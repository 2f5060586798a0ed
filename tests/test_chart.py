"""The Helm chart with the real Helm library (helm-python-sdk): strict lint, renders validated against the
Kubernetes schemas, generated files up to date, and the same documents as the launcher renders."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_specs import BAD_SPECS
from helm_python.chart import Chart, lint

from charts import generate
from contract.settings import known_variables, required_variables
from contract.predict import option_variables
from launcher.cli import KUBERNETES_VERSIONS
from launcher.render import manifests
from launcher.spec import JobSpec
from launcher.validate import validate_manifests

CHART = Path(__file__).resolve().parents[1] / "charts" / "finetune"
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
REQUIRED = {"train_data": "s3://data/train", "eval_data": "s3://data/eval", "output": "s3://models/run"}
RELEASE = "retrain-finetune"  # its full name is the release name: the launcher's spec name in the comparison
WARNING = 2  # Helm's lint severities: 1 info, 2 warning, 3 error
CHART_ONLY = ("cronjob", "create_service_account", "nameOverride", "fullnameOverride")


def render_chart(values: dict, revision: int = 1, release: str = RELEASE) -> list[dict]:
    rendered = Chart.load(str(CHART)).render(values, name=release, namespace="ml", revision=revision, is_install=True)
    return [
        document
        for path, text in rendered.items()
        if path.endswith(".yaml") and text.strip()
        for document in yaml.safe_load_all(text)
        if document
    ]


def _values(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _lint_errors(values: dict) -> str:
    result = lint(str(CHART), values, strict=True)
    return " ".join(str(error) for error in result["errors"])


@pytest.mark.parametrize("values", [REQUIRED, *VALUES_FILES], ids=lambda v: getattr(v, "name", "required-only"))
def test_strict_lint(values):
    result = lint(str(CHART), values if isinstance(values, dict) else _values(values), strict=True)
    assert result["errors"] == [] and not [m for m in result["messages"] if m["severity"] >= WARNING]


@pytest.mark.parametrize("values", [REQUIRED, *VALUES_FILES], ids=lambda v: getattr(v, "name", "required-only"))
def test_renders_are_valid_for_every_supported_kubernetes(values):
    documents = render_chart(values if isinstance(values, dict) else _values(values))
    assert documents
    assert validate_manifests(documents, KUBERNETES_VERSIONS) == []


def test_generated_files_are_up_to_date():
    for path, text in generate.generated().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run python -m charts.generate"
    assert generate.main(["--check"]) == 0


def test_the_schema_uses_no_inline_regex_flags():
    text = (CHART / "values.schema.json").read_text()
    assert "(?" not in text  # (?i) and lookarounds: Go's regexp and JavaScript disagree on them


def test_values_files_render_what_they_ask_for():
    kinds = {path.name: sorted(document["kind"] for document in render_chart(_values(path))) for path in VALUES_FILES}
    assert kinds["cronjob-values.yaml"] == ["CronJob", "NetworkPolicy", "Pod"]
    assert kinds["serviceaccount-values.yaml"] == ["Job", "NetworkPolicy", "Pod", "ServiceAccount"]
    cron = next(d for d in render_chart(_values(CHART / "ci" / "cronjob-values.yaml")) if d["kind"] == "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and cron["spec"]["successfulJobsHistoryLimit"] == 3
    ascend = next(d for d in render_chart(_values(CHART / "ci" / "accelerators-values.yaml")) if d["kind"] == "Job")
    limits = ascend["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["huawei.com/Ascend910"] == 1


def test_several_workers_under_a_cronjob_find_pod_zero_in_the_pod():
    documents = render_chart(_values(CHART / "ci" / "distributed-cronjob-values.yaml"), release="retrain")
    assert sorted(document["kind"] for document in documents) == ["CronJob", "NetworkPolicy", "Pod", "Service"]
    service = next(d for d in documents if d["kind"] == "Service")
    cron = next(d for d in documents if d["kind"] == "CronJob")
    job = cron["spec"]["jobTemplate"]["spec"]
    pod = job["template"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 2, 2)
    assert pod["spec"]["subdomain"] == service["metadata"]["name"] == "retrain-finetune-workers"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    env = _env(pod["spec"]["containers"][0])
    assert (env["FT_WORKERS"], env["FT_DEVICES_PER_WORKER"], env["FT_WORKER_SERVICE"]) == (
        "2",
        "2",
        "retrain-finetune-workers",
    )
    assert env["FT_OUTPUT"] == "s3://models/garbage26-weekly-x4/$(JOB_NAME)"
    assert not any("-0." in str(value) for value in env.values())  # the Job's name is only known in the pod


def test_upgrades_create_a_new_job_instead_of_patching_an_immutable_one():
    first = next(d for d in render_chart(REQUIRED, revision=1, release="retrain") if d["kind"] == "Job")
    second = next(d for d in render_chart(REQUIRED, revision=2, release="retrain") if d["kind"] == "Job")
    assert first["metadata"]["name"] == "retrain-finetune-r1" and second["metadata"]["name"] == "retrain-finetune-r2"


def test_missing_required_values_stop_the_render():
    with pytest.raises(Exception, match="train_data is required"):
        render_chart({"eval_data": "x", "output": "y"})


# The launcher's bad-spec cases that have no chart form: the release, not a value, names the job and its
# namespace; a null value means "the chart's default" in Helm; a YAML date is text by the time Helm sees it.
NOT_CHART_VALUES = {"name", "namespace"}


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return {str(key) for key in node} | {key for value in node.values() for key in _keys(value)}
    if isinstance(node, list):
        return {key for item in node for key in _keys(item)}
    return set()


def _has_chart_form(change: dict) -> bool:
    return not (set(change) & NOT_CHART_VALUES) and all(
        value is not None and not isinstance(value, datetime.date) for value in change.values()
    )


CHART_BAD_SPECS = [(change, fragment) for change, fragment in BAD_SPECS if _has_chart_form(change)]


@pytest.mark.parametrize("change, fragment", CHART_BAD_SPECS, ids=[fragment[:40] for _, fragment in CHART_BAD_SPECS])
def test_the_chart_refuses_what_the_launcher_refuses(change, fragment):
    with pytest.raises(Exception) as caught:
        render_chart({**REQUIRED, **change})
    assert any(key in str(caught.value) for key in _keys(change)), "the error names no key of the change"


def _env(container: dict) -> dict:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


# --- the chart and the launcher render the same documents ---------------------------------------------------------

# Each case: chart values (the spec is the same keys plus name and namespace). Together they reach every branch
# of both renderers.
PARITY_CASES = {
    "required-only": REQUIRED,
    **{path.name: _values(path) for path in VALUES_FILES if "cronjob" not in path.name},
    "everything": {
        **REQUIRED,
        "image_pull_secrets": ["registry-login"],
        "service_account": "trainer",
        "service_account_token": True,
        "priority_class": "batch-low",
        "deadline_seconds": 86400,
        "ttl_seconds_after_finished": None,
        "queue": "team-a",
        "labels": {"team": "vision"},
        "annotations": {"example.com/owner": "vision team", "example.com/cost": "$(cheap)"},
        "env": {"PIP_INDEX": "https://pypi.example.com/simple", "LITERAL": "$(HOME) stays"},
        "settings": {
            "seed": 20240101,
            "lr_max": 0.00001,
            "weight_decay": 4e-7,
            "warmup_epochs": 2,
            "term_grace_seconds": 120,
            "freeze_backbone": True,
            "hub_mirror": "http://hub.internal:8080/mirror",
            "mlflow_tracking_uri": "http://mlflow.tracking:5000",
            "amp_level": "O2",
            "device_target": "GPU",
            "batch_size": 48,
        },
        "storage": {
            "endpoint": "http://minio.storage:9000",
            "region": "eu-1",
            "credentials_secret": "s3",
            "access_key_id_key": "id",
            "secret_access_key_key": "key",
        },
        "network_policy": {"egress_cidrs": ["10.0.0.0/8"], "extra_egress_ports": [8443, 80]},
        "resources": {"cpu": 8, "accelerators": 2},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "node_selector": {"gpu": "a100"},
        "workers": 3,
        "retries": 2,
    },
    "predict": {
        **REQUIRED,
        "mode": "predict",
        "predict": {"images": "s3://b/incoming/$(date)", "to": "s3://b/predictions/1", "top_k": 3},
        "storage": {"endpoint": "http://minio.storage:9000", "credentials_secret": "s3"},
        "settings": {"batch_size": 64},
    },
    "implied-ascend-no-policy": {
        **REQUIRED,
        "resources": {"accelerators": 8, "accelerator_resource": "huawei.com/Ascend910"},
        "network_policy": {"enabled": False},
        "devices_per_worker": 4,
        "settings": {"batch_size": 64, "term_grace_seconds": 0},
    },
}


def _spec_for(values: dict) -> JobSpec:
    defaults = {"image": generate.CHART_DEFAULTS["image"], "model": generate.CHART_DEFAULTS["model"]}
    return JobSpec.model_validate(
        {
            "name": RELEASE,
            "namespace": "ml",
            **defaults,
            **{key: value for key, value in values.items() if key not in CHART_ONLY},
        }
    )


def _as_launcher_would(document: dict) -> dict:
    """A chart document minus the declared differences: Helm's own labels, the Job name's revision suffix."""
    document = copy.deepcopy(document)

    def relabel(node: Any) -> None:
        if isinstance(node, dict):
            labels = node.get("labels")
            if isinstance(labels, dict) and labels.get("app.kubernetes.io/managed-by") == "Helm":
                labels.pop("helm.sh/chart")
                labels["app.kubernetes.io/managed-by"] = "launcher"
            for value in node.values():
                relabel(value)
        elif isinstance(node, list):
            for item in node:
                relabel(item)

    relabel(document)
    if document["kind"] == "Job":
        document["metadata"]["name"] = document["metadata"]["name"].removesuffix("-r1")
    return document


def _comparable(documents: list[dict]) -> dict[str, dict]:
    return {document["kind"]: document for document in documents}


@pytest.mark.parametrize("case", PARITY_CASES, ids=str)
def test_chart_and_launcher_render_the_same_documents(case):
    values = PARITY_CASES[case]
    chart = [d for d in render_chart(values) if d["kind"] != "Pod" and d["kind"] != "ServiceAccount"]
    launcher = manifests(_spec_for(values))
    assert _comparable([_as_launcher_would(d) for d in chart]) == _comparable(launcher)
    job = _comparable(launcher)["Job"]
    variables = {name for name in _env(job["spec"]["template"]["spec"]["containers"][0]) if name.startswith("FT_")}
    assert variables <= {*known_variables(), *option_variables()} and set(required_variables()) <= variables


def test_the_parity_cases_reach_what_they_are_for():
    everything = _comparable(manifests(_spec_for(PARITY_CASES["everything"])))
    pod = everything["Job"]["spec"]["template"]["spec"]
    env = _env(pod["containers"][0])
    assert (env["FT_SEED"], env["FT_LR_MAX"], env["FT_WEIGHT_DECAY"], env["FT_WARMUP_EPOCHS"]) == (
        "20240101",
        "0.00001",
        "4e-7",
        "2",
    )
    assert pod["terminationGracePeriodSeconds"] == 135 and pod["automountServiceAccountToken"] is True
    ports = everything["NetworkPolicy"]["spec"]["egress"][1]["ports"]
    assert [port["port"] for port in ports] == [80, 5000, 8080, 8443, 9000]
    implied = _comparable(manifests(_spec_for(PARITY_CASES["implied-ascend-no-policy"])))
    assert "NetworkPolicy" not in implied
    implied_pod = implied["Job"]["spec"]["template"]["spec"]
    assert _env(implied_pod["containers"][0])["FT_DEVICE_TARGET"] == "Ascend"
    assert implied_pod["terminationGracePeriodSeconds"] == 15


def test_a_cronjob_runs_the_launchers_job_writing_under_its_own_name():
    values = _values(CHART / "ci" / "cronjob-values.yaml")
    cron = _as_launcher_would(next(d for d in render_chart(values) if d["kind"] == "CronJob"))
    launcher_job = _comparable(manifests(_spec_for(values)))["Job"]
    scheduled = cron["spec"]["jobTemplate"]["spec"]
    container = scheduled["template"]["spec"]["containers"][0]
    job_name, *env = container["env"]
    assert job_name["name"] == "JOB_NAME" and env[3] == {
        "name": "FT_OUTPUT",
        "value": f"{values['output']}/$(JOB_NAME)",
    }
    container["env"] = env
    env[3] = launcher_job["spec"]["template"]["spec"]["containers"][0]["env"][3]
    assert scheduled == launcher_job["spec"]
