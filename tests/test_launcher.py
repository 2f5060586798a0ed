"""The launcher's specs and manifests: golden renders, strict schemas, safe values, the environment contract,
the security posture, clear errors, and `run --local`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bad_specs import BAD_SPECS
from hypothesis import HealthCheck, given, settings, strategies

from contract.predict import option_variables
from contract.settings import Settings, known_variables, required_variables
from job.prediction.options import load_predict_settings
from launcher.cli import KUBERNETES_VERSIONS, main
from launcher.errors import EXIT_BAD_SPEC, SpecError
from launcher.render import manifests, render
from launcher.spec import JobSpec, load_spec
from launcher.validate import validate_manifests

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
GOLDEN = Path(__file__).parent / "golden"
MINIMAL = {
    "name": "tiny",
    "image": "finetune:1",
    "model": "mindspore/1.6/googlenet_cifar10",
    "train_data": "s3://b/train",
    "eval_data": "s3://b/eval",
    "output": "s3://b/out",
}


def _container(document: dict) -> dict:
    return document["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_golden_renders(example):
    golden = GOLDEN / example.name
    assert render(load_spec(example)) == golden.read_text(), (
        f"the render of {example.name} changed; if intended: launcher render {example} > {golden}"
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_examples_are_valid_for_every_supported_kubernetes(example):
    assert validate_manifests(manifests(load_spec(example)), KUBERNETES_VERSIONS) == []


def test_schema_validation_catches_what_the_cluster_would_refuse():
    wrong_type, unknown_field = manifests(JobSpec.model_validate(MINIMAL))[:1] * 2
    wrong_type = json.loads(json.dumps(wrong_type))
    wrong_type["spec"]["backoffLimit"] = "many"
    unknown_field["spec"]["unknownField"] = 1
    problems = validate_manifests([wrong_type, unknown_field], ["1.29", "1.33"])
    assert len(problems) == 4
    assert sum("spec.backoffLimit" in problem for problem in problems) == 2
    assert sum("unknownField" in problem for problem in problems) == 2


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_environment_contract(example):
    job = next(document for document in manifests(load_spec(example)) if document["kind"] == "Job")
    container = _container(job)
    names = [variable["name"] for variable in container["env"]]
    assert len(names) == len(set(names))
    job_variables = {name for name in names if name.startswith("FT_")}
    assert job_variables <= {*known_variables(), *option_variables()}  # every FT_ variable is known to the job
    assert set(required_variables()) <= job_variables  # every required one is set
    if container.get("args") == ["predict"]:  # python -m job predict accepts the container's environment
        environment = {item["name"]: item["value"] for item in container["env"] if "value" in item}
        settings = load_predict_settings([], environment)
        assert (settings.images, settings.to, settings.top_k) == (
            environment["FT_PREDICT_IMAGES"],
            environment["FT_PREDICT_TO"],
            int(environment["FT_PREDICT_TOP_K"]),
        )


def test_security_posture_and_secrets_by_reference():
    spec = JobSpec.model_validate({**MINIMAL, "storage": {"credentials_secret": "s3-creds"}})
    document = manifests(spec)[0]
    pod = document["spec"]["template"]["spec"]
    container = _container(document)
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False  # a Service named ft-* would inject FT_*_SERVICE_HOST
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    shm = next(volume for volume in pod["volumes"] if volume["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert not [item for item in container["env"] if "valueFrom" in item or item["name"].startswith("AWS_")]
    credentials = next(volume for volume in pod["volumes"] if "secret" in volume)
    assert credentials["secret"] == {
        "secretName": "s3-creds",
        "defaultMode": 0o440,
        "items": [
            {"key": "AWS_ACCESS_KEY_ID", "path": "access-key-id"},
            {"key": "AWS_SECRET_ACCESS_KEY", "path": "secret-access-key"},
        ],
    }
    mount = next(item for item in container["volumeMounts"] if item["name"] == credentials["name"])
    assert mount == {"name": "s3-credentials", "mountPath": "/var/run/secrets/finetune/s3", "readOnly": True}
    assert {"name": "FT_S3_CREDENTIALS_DIR", "value": mount["mountPath"]} in container["env"]
    rules = document["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "finetune", "operator": "In", "values": [2]},
    }
    assert rules[1]["action"] == "Ignore" and rules[1]["onPodConditions"][0]["type"] == "DisruptionTarget"
    with_account = manifests(JobSpec.model_validate({**MINIMAL, "service_account": "trainer"}))[0]
    account_pod = with_account["spec"]["template"]["spec"]
    assert account_pod["serviceAccountName"] == "trainer" and account_pod["automountServiceAccountToken"] is False
    with_token = manifests(
        JobSpec.model_validate({**MINIMAL, "service_account": "trainer", "service_account_token": True})
    )[0]
    assert with_token["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


def test_several_workers_render_an_indexed_job_and_the_service_naming_its_pods():
    spec = JobSpec.model_validate({**MINIMAL, "workers": 3, "retries": 2, "settings": {"batch_size": 48}})
    service, job, policy = manifests(spec)
    assert policy["kind"] == "NetworkPolicy" and policy["spec"]["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": service["spec"]["selector"]}}]}
    ]
    assert service["kind"] == "Service" and service["metadata"]["name"] == "tiny-workers"
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {key: job["spec"][key] for key in ("completionMode", "completions", "parallelism", "backoffLimit")} == {
        "completionMode": "Indexed",
        "completions": 3,
        "parallelism": 3,
        "backoffLimit": 6,
    }
    assert job["spec"]["template"]["spec"]["subdomain"] == "tiny-workers"
    env = {item["name"]: item.get("value") for item in _container(job)["env"]}
    assert (env["FT_WORKERS"], env["FT_DEVICES_PER_WORKER"], env["FT_WORKER_SERVICE"]) == ("3", "1", "tiny-workers")
    assert not any("tiny-0" in value for value in env.values() if value)  # pod 0's address is found in the pod
    single = manifests(JobSpec.model_validate(MINIMAL))
    assert [document["kind"] for document in single] == ["Job", "NetworkPolicy"]
    assert "completionMode" not in single[0]["spec"] and single[1]["spec"]["ingress"] == []
    accelerators = JobSpec.model_validate({**MINIMAL, "resources": {"accelerators": 8}, "settings": {"batch_size": 64}})
    assert {item["name"]: item.get("value") for item in _container(manifests(accelerators)[0])["env"]}[
        "FT_DEVICE_TARGET"
    ] == "GPU"  # implied by nvidia.com/gpu
    assert {item["name"]: item.get("value") for item in _container(manifests(accelerators)[0])["env"]}[
        "FT_DEVICES_PER_WORKER"
    ] == "8"


def test_the_global_batch_must_split_evenly_over_the_processes(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "workers": 2, "devices_per_worker": 4, "settings": {"batch_size": 36}}))
    assert main(["render", str(path)]) == EXIT_BAD_SPEC
    assert "settings.batch_size (36) must be a multiple of the 8 training processes" in capsys.readouterr().err


@pytest.mark.parametrize("change, fragment", BAD_SPECS, ids=[fragment[:40] for _, fragment in BAD_SPECS])
def test_bad_specs_name_the_key(tmp_path, change, fragment):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, **change}))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert fragment in str(caught.value)


def test_setting_values_are_checked_by_the_jobs_own_model(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "settings": {"epochs": 0, "device_target": "TPU"}}))
    assert main(["render", str(path)]) == EXIT_BAD_SPEC
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "settings.epochs" in error and "settings.device_target" in error


def test_overrides_and_missing_files(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    spec = load_spec(
        path, ["settings.epochs=5", "resources.accelerators=2", "labels.team=vision", "settings.batch_size=32"]
    )  # (YAML scalars: 5 and 32 are numbers)
    assert spec.settings.model_dump(exclude_none=True) == {"epochs": 5, "batch_size": 32}
    assert spec.labels == {"team": "vision"}
    assert spec.resources.accelerators == 2 and spec.implied_device_target.value == "GPU"
    with pytest.raises(SpecError, match="use --set key=value"):
        load_spec(path, ["epochs"])
    assert main(["render", str(tmp_path / "absent.yaml")]) == EXIT_BAD_SPEC
    assert "does not exist" in capsys.readouterr().err


HOSTILE = strategies.one_of(
    strategies.text(min_size=1, max_size=40),
    strategies.sampled_from(
        [
            '"',
            "'",
            "\n",
            "{{ name }}",
            "$(HOME)",
            "$$(X)",
            "$",
            "{% raw %}",
            "&anchor *anchor",
            "--- \n...",
            "key: value",
            "- item",
            "!!python/object:os.system",
            "\\",
            "#",
            "@",
            "`",
            "\ufeff",
            "\u2028",
            "\x00",
            "\x85",
            "\U0001f600",
            "|\n  block",
            "> folded",
            "? complex",
            "%YAML 1.1",
        ]
    ),
).filter(lambda text: "://" not in text)  # URLs with credentials are refused, a case of its own
IMAGE = HOSTILE.map(lambda text: "".join(text.split()) or "x")  # an image reference has no spaces


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=IMAGE, model=HOSTILE, data=HOSTILE, output=HOSTILE, value=HOSTILE, note=HOSTILE)
def test_hostile_strings_render_back_to_exactly_the_input(image, model, data, output, value, note):
    spec = JobSpec.model_validate(
        {
            **MINIMAL,
            "image": image,
            "model": model,
            "train_data": data,
            "eval_data": data + "e",
            "output": output,
            "env": {"EXTRA": value},
            "annotations": {"example.com/note": note},
            "settings": {"hub_mirror": value},
        }
    )
    documents = list(yaml.safe_load_all(render(spec)))
    assert [document["kind"] for document in documents] == ["Job", "NetworkPolicy"]
    job = documents[0]
    container = _container(job)
    env = {item["name"]: item["value"].replace("$$", "$") for item in container["env"] if "value" in item}
    assert container["image"] == image
    assert (env["FT_MODEL"], env["FT_TRAIN_DATA"], env["FT_EVAL_DATA"], env["FT_OUTPUT"]) == (
        model,
        data,
        data + "e",
        output,
    )
    assert env["EXTRA"] == value and env["FT_HUB_MIRROR"] == value
    assert job["metadata"]["annotations"] == {"example.com/note": note}
    assert job["metadata"]["name"] == "tiny" and job["kind"] == "Job"


@pytest.mark.slow
def test_run_local_gives_the_job_the_manifest_environment(tmp_path, hub_root, digits_data):
    from conftest import HUB_ID

    train, evaluation = digits_data
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                **MINIMAL,
                "model": HUB_ID,
                "train_data": str(train),
                "eval_data": str(evaluation),
                "output": str(tmp_path / "out"),
                "settings": {
                    "hub_mirror": str(hub_root),
                    "epochs": 1,
                    "image_size": 32,
                    "batch_size": 16,
                    "export_mindir": False,
                    "log_every": 100,
                },
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "run", "--local", str(spec), "--workdir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "FT_EPOCHS": "99", "AWS_ENDPOINT_URL": "http://leak"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 1  # the manifest's FT_EPOCHS, not this machine's
    stored = json.loads((tmp_path / "out" / "metrics.json").read_text())["settings"]
    assert stored["hub_cache"] == str(tmp_path / "work" / "cache" / "hub")  # /cache mapped to the workdir
    assert stored["scratch_dir"] == str(tmp_path / "work" / "scratch")
    assert (tmp_path / "work" / "cache" / "hub" / "assets").is_dir()
    assert set(Settings.model_fields) <= set(stored)
