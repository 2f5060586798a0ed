"""One security policy applied to every rendered manifest (the launcher's renders of examples/*.yaml, the Helm
chart with its default values and every ci/*-values.yaml), a proof that each rule can fail, and secrets kept
out of rendered output and of the job's logs."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from typing import Any
from collections.abc import Iterator

import pytest
import yaml

from conftest import job_environment
from job.errors import EXIT_BAD_INPUT
from job.hub.publish import publish
from launcher.render import manifests
from launcher.spec import JobSpec, load_spec
from s3server import SECRET_KEY
from test_bad_input import TWO_CLASSES, write_tree
from test_chart import REQUIRED, VALUES_FILES, render_chart
from test_launcher import EXAMPLES, MINIMAL

SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}
DISTINCTIVE_SECRET = "zq7-distinctive-secret-4f1c9e"
LOCATION_SUFFIXES = ("_DIR", "_FILE", "_PATH")  # names a place where a secret is, not the secret


def pod_specs(node: Any) -> Iterator[dict]:
    """Every pod spec (a mapping with `containers`) anywhere in an object: a Pod's spec, a Job's template,
    a CronJob's job template, or any other workload that embeds one."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield node
            return
        for value in node.values():
            yield from pod_specs(value)
    elif isinstance(node, list):
        for item in node:
            yield from pod_specs(item)


def _literal_secrets(node: Any, path: str) -> Iterator[str]:
    """Paths of string values stored under secret-looking keys (ConfigMap data, annotations, ...); keys ending
    in Name or Ref name a Secret rather than hold one."""
    if isinstance(node, dict):
        for key, value in node.items():
            if (
                isinstance(value, str)
                and value
                and SECRET_NAME.search(str(key))
                and not str(key).endswith(("Name", "Ref"))
            ):
                yield f"{path}.{key}"
            yield from _literal_secrets(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _literal_secrets(item, f"{path}.{index}")


def _container_violations(pod: dict, container: dict) -> Iterator[str]:
    pod_context = pod.get("securityContext") or {}
    context = container.get("securityContext") or {}

    def effective(key: str):  # the container's setting wins over the pod's
        return context.get(key, pod_context.get(key))

    if effective("runAsNonRoot") is not True:
        yield "runAsNonRoot: must be true (pod or container)"
    user = effective("runAsUser")
    if not isinstance(user, int) or user == 0:
        yield f"runAsUser: must be a non-zero user id (got {user!r})"
    if context.get("allowPrivilegeEscalation") is not False:
        yield "allowPrivilegeEscalation: must be false"
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        yield "capabilities: must drop ALL"
    if context.get("readOnlyRootFilesystem") is not True:
        yield "readOnlyRootFilesystem: must be true"
    if (effective("seccompProfile") or {}).get("type") not in SECCOMP_TYPES:
        yield "seccompProfile: must be RuntimeDefault or Localhost"
    if context.get("privileged"):
        yield "privileged: must not be set"
    for variable in container.get("env") or []:
        name, source = variable["name"], variable.get("valueFrom") or {}
        if "secretKeyRef" in source:
            yield (
                f"credentials in the environment: env {name} is inherited by every process; mount the Secret as files"
            )
        elif SECRET_NAME.search(name) and not name.endswith(LOCATION_SUFFIXES):
            yield f"inline secret: env {name} holds a secret-looking value; mount it from a Secret as a file"
    for source in container.get("envFrom") or []:
        if "secretRef" in source:
            yield "credentials in the environment: envFrom secretRef; mount the Secret as files"


def _pod_violations(pod: dict) -> Iterator[str]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            yield f"{key}: must not be set"
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            yield f"hostPath: volume {volume.get('name')} mounts the node's filesystem"
    if pod.get("automountServiceAccountToken") is not False:
        yield "automountServiceAccountToken: must be false (the job never calls the Kubernetes API)"
    if pod.get("enableServiceLinks") is not False:
        yield "enableServiceLinks: must be false (Services would inject FT_*_SERVICE_* variables)"


def _selects(policy: dict, labels: dict) -> bool:
    selector = ((policy.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
    return selector.items() <= labels.items()


def _pod_labels(document: dict) -> Iterator[dict]:
    """Labels of every pod template in an object (a bare Pod's own labels)."""
    if document.get("kind") == "Pod":
        yield (document.get("metadata") or {}).get("labels") or {}
        return
    node: Any = document
    for key in ("spec", "jobTemplate", "spec", "template"):
        if isinstance(node, dict) and key in node:
            node = node[key]
    if isinstance(node, dict) and "metadata" in node:
        yield node["metadata"].get("labels") or {}


def unisolated_pods(documents: list[dict]) -> list[str]:
    """Workloads whose pods no NetworkPolicy of the same set selects, for both directions."""
    policies = [
        d
        for d in documents
        if d.get("kind") == "NetworkPolicy"
        and {"Ingress", "Egress"} <= set((d.get("spec") or {}).get("policyTypes") or [])
    ]
    found = []
    for document in documents:
        if document.get("kind") == "NetworkPolicy" or not list(pod_specs(document)):
            continue
        for labels in _pod_labels(document):
            if not any(_selects(policy, labels) for policy in policies):
                found.append(
                    f"{document.get('kind')}/{document['metadata'].get('name')}: network: no "
                    f"NetworkPolicy (ingress and egress) selects its pods"
                )
    return found


def violations(document: dict) -> list[str]:
    """Every rule the object breaks, as `Kind/name: where: rule: what`."""
    name = f"{document.get('kind')}/{(document.get('metadata') or {}).get('name')}"
    if (document.get("metadata") or {}).get("namespace") == "default":
        found_namespace = [f"{name}: namespace: the default namespace is shared; name one"]
    else:
        found_namespace = []
    found = found_namespace + [
        f"{name}: {path}: inline secret: a literal value under a secret-looking key"
        for path in _literal_secrets(document, "")
    ]
    if document.get("kind") == "Secret":
        found.append(f"{name}: Secret: inline secret: manifests reference existing Secrets, never carry one")
    for pod in pod_specs(document):
        found += [f"{name}: pod: {problem}" for problem in _pod_violations(pod)]
        for container in [*pod["containers"], *(pod.get("initContainers") or [])]:
            found += [
                f"{name}: container {container.get('name')}: {problem}"
                for problem in _container_violations(pod, container)
            ]
    return found


def _rendered() -> list:
    """Every rendered set of manifests, found when the tests are collected: the launcher's examples, the chart
    with its default values (plus the required ones) and with each ci values file."""
    renders = [pytest.param("launcher", path, id=f"launcher-{path.name}") for path in EXAMPLES]
    renders.append(pytest.param("chart", None, id="chart-defaults"))
    renders += [pytest.param("chart", path, id=f"chart-{path.name}") for path in VALUES_FILES]
    return renders


@pytest.mark.parametrize("source, path", _rendered())
def test_every_rendered_manifest_meets_the_policy(source, path):
    if source == "launcher":
        documents = manifests(load_spec(path))
    else:
        documents = render_chart(yaml.safe_load(path.read_text()) if path else REQUIRED)
    assert [pod for document in documents for pod in pod_specs(document)]  # the walk finds the pods
    assert [problem for document in documents for problem in violations(document)] == []
    assert unisolated_pods(documents) == []


def test_a_token_is_mounted_only_when_asked_for():
    named = manifests(JobSpec.model_validate({**MINIMAL, "service_account": "trainer"}))[0]
    assert named["spec"]["template"]["spec"]["automountServiceAccountToken"] is False and violations(named) == []
    asked = manifests(JobSpec.model_validate({**MINIMAL, "service_account": "trainer", "service_account_token": True}))[
        0
    ]
    assert [problem for problem in violations(asked) if "automountServiceAccountToken" in problem]  # declared


def test_pods_without_a_network_policy_are_found():
    documents = manifests(JobSpec.model_validate({**MINIMAL, "workers": 2}))
    assert unisolated_pods(documents) == []
    without = [document for document in documents if document["kind"] != "NetworkPolicy"]
    assert unisolated_pods(without) == ["Job/tiny: network: no NetworkPolicy (ingress and egress) selects its pods"]
    policy = copy.deepcopy(next(document for document in documents if document["kind"] == "NetworkPolicy"))
    policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] = "another-job"
    assert unisolated_pods([*without, policy])
    policy = copy.deepcopy(next(document for document in documents if document["kind"] == "NetworkPolicy"))
    policy["spec"]["policyTypes"] = ["Ingress"]
    assert unisolated_pods([*without, policy])


DELETE = object()
CONTAINER = "containers.0.securityContext"


def _apply(tree: dict, changes: dict[str, Any]) -> None:
    """Set dotted paths (list indices as numbers) in `tree`; DELETE removes the key."""
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = tree
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        if value is DELETE:
            target.pop(last, None)
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value


@pytest.mark.parametrize(
    "changes, rule",
    [
        pytest.param(
            {"securityContext.runAsNonRoot": DELETE, f"{CONTAINER}.runAsNonRoot": DELETE},
            "runAsNonRoot",
            id="runAsNonRoot-unset",
        ),
        pytest.param({f"{CONTAINER}.runAsNonRoot": False}, "runAsNonRoot", id="runAsNonRoot-overridden-by-container"),
        pytest.param({"securityContext.runAsUser": 0}, "runAsUser", id="runAsUser-root"),
        pytest.param({"securityContext.runAsUser": DELETE}, "runAsUser", id="runAsUser-unset"),
        pytest.param(
            {f"{CONTAINER}.allowPrivilegeEscalation": True}, "allowPrivilegeEscalation", id="allowPrivilegeEscalation"
        ),
        pytest.param({f"{CONTAINER}.capabilities": {"drop": ["NET_RAW"]}}, "capabilities", id="capabilities-kept"),
        pytest.param(
            {f"{CONTAINER}.readOnlyRootFilesystem": False}, "readOnlyRootFilesystem", id="readOnlyRootFilesystem"
        ),
        pytest.param({"securityContext.seccompProfile": {"type": "Unconfined"}}, "seccompProfile", id="seccomp"),
        pytest.param({f"{CONTAINER}.privileged": True}, "privileged", id="privileged"),
        pytest.param({"volumes.0": {"name": "scratch", "hostPath": {"path": "/"}}}, "hostPath", id="hostPath"),
        pytest.param({"hostNetwork": True}, "hostNetwork", id="hostNetwork"),
        pytest.param({"hostPID": True}, "hostPID", id="hostPID"),
        pytest.param({"hostIPC": True}, "hostIPC", id="hostIPC"),
        pytest.param({"automountServiceAccountToken": DELETE}, "automountServiceAccountToken", id="token-by-default"),
        pytest.param(
            {"automountServiceAccountToken": True}, "automountServiceAccountToken", id="token-without-service-account"
        ),
        pytest.param(
            {"automountServiceAccountToken": True, "serviceAccountName": "trainer"},
            "automountServiceAccountToken",
            id="token-with-service-account",
        ),
        pytest.param({"enableServiceLinks": DELETE}, "enableServiceLinks", id="service-links"),
        pytest.param(
            {"containers.0.env": [{"name": "DB_PASSWORD", "value": "hunter2"}]},
            "env DB_PASSWORD",
            id="secret-env-inline",
        ),
        pytest.param(
            {"containers.0.env": [{"name": "API_TOKEN", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]},
            "env API_TOKEN",
            id="secret-env-from-a-config-map",
        ),
        pytest.param(
            {
                "containers.0.env": [
                    {
                        "name": "AWS_SECRET_ACCESS_KEY",
                        "valueFrom": {"secretKeyRef": {"name": "s3", "key": "AWS_SECRET_ACCESS_KEY"}},
                    }
                ]
            },
            "credentials in the environment",
            id="secret-env-from-a-secret",
        ),
        pytest.param(
            {"containers.0.envFrom": [{"secretRef": {"name": "s3"}}]},
            "credentials in the environment",
            id="secret-env-from-all-of-a-secret",
        ),
        pytest.param(
            {"initContainers": [{"name": "fetch", "image": "busybox"}]}, "container fetch", id="init-container-checked"
        ),
    ],
)
def test_each_rule_can_fail(changes, rule):
    job = manifests(JobSpec.model_validate({**MINIMAL, "storage": {"credentials_secret": "s3-credentials"}}))[0]
    assert violations(job) == []
    bad = copy.deepcopy(job)
    _apply(bad["spec"]["template"]["spec"], changes)
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "weekly"},
        "spec": {"schedule": "0 3 * * 0", "jobTemplate": {"spec": bad["spec"]}},
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": bad["spec"]["template"]["spec"]}
    for document in (bad, cron, pod):  # the same pod found wherever it is embedded
        found = violations(document)
        assert found and all(rule in problem for problem in found), found
        assert found[0].startswith(f"{document['kind']}/{document['metadata']['name']}: ")


@pytest.mark.parametrize(
    "document, where",
    [
        pytest.param(
            {"kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"AWS_SECRET_ACCESS_KEY": "hunter2"}},
            ".data.AWS_SECRET_ACCESS_KEY",
            id="config-map",
        ),
        pytest.param(
            {
                "kind": "ServiceAccount",
                "metadata": {"name": "runner", "annotations": {"example.com/api-token": "hunter2"}},
            },
            ".metadata.annotations.example.com/api-token",
            id="annotation",
        ),
        pytest.param(
            {"kind": "Secret", "metadata": {"name": "s3"}, "stringData": {"key": "value"}},
            "Secret: ",
            id="secret-object",
        ),
    ],
)
def test_objects_without_pods_are_checked_for_inline_secrets(document, where):
    found = violations(document)
    assert len(found) == 1 and where in found[0] and "inline secret" in found[0], found


# --- secrets never reach rendered output or the job's logs --------------------------------------------------------


def test_launcher_output_never_holds_the_machines_credentials(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {**MINIMAL, "storage": {"credentials_secret": "s3-credentials", "endpoint": "https://s3.example.com"}}
        )
    )
    environment = {
        **job_environment(),
        "AWS_SECRET_ACCESS_KEY": DISTINCTIVE_SECRET,
        "AWS_ACCESS_KEY_ID": DISTINCTIVE_SECRET + "-id",
    }
    outputs = {}
    for command in ("render", "validate"):
        result = subprocess.run(
            [sys.executable, "-m", "launcher", command, str(spec)],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert DISTINCTIVE_SECRET not in result.stdout + result.stderr
        outputs[command] = result.stdout
    pod = next(yaml.safe_load_all(outputs["render"]))["spec"]["template"]["spec"]
    assert [volume["secret"]["secretName"] for volume in pod["volumes"] if "secret" in volume] == ["s3-credentials"]


def test_the_default_namespace_is_flagged():
    document = {"kind": "Job", "metadata": {"name": "x", "namespace": "default"}}
    assert violations(document) == ["Job/x: namespace: the default namespace is shared; name one"]


@pytest.mark.slow
def test_a_job_reads_its_s3_credentials_only_from_mounted_files(tmp_path, s3_server, hub_root, digits_data):
    """A real run against the real S3 server with the credentials as files, none in the environment."""
    from conftest import HUB_ID, SHORT_RUN

    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "access-key-id").write_text(s3_server.environment["AWS_ACCESS_KEY_ID"] + "\n")
    (credentials / "secret-access-key").write_text(s3_server.environment["AWS_SECRET_ACCESS_KEY"] + "\n")
    bucket = s3_server.new_bucket()
    train, evaluation = digits_data
    environment = {
        key: value
        for key, value in job_environment(
            **{**SHORT_RUN, "FT_EPOCHS": "1"},
            FT_MODEL=HUB_ID,
            FT_HUB_MIRROR=str(hub_root),
            FT_HUB_CACHE=str(tmp_path / "cache"),
            FT_TRAIN_DATA=str(train),
            FT_EVAL_DATA=str(evaluation),
            FT_OUTPUT=f"s3://{bucket}/run",
            FT_S3_CREDENTIALS_DIR=str(credentials),
        ).items()
        if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    assert environment["AWS_ENDPOINT_URL"] == s3_server.endpoint

    def run_job(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "job", *arguments],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    result = run_job()
    assert result.returncode == 0, result.stderr[-2000:]
    stored = json.loads(s3_server.client().get_object(Bucket=bucket, Key="run/metrics.json")["Body"].read())
    assert stored["summary"]["epochs"] == 1
    (credentials / "secret-access-key").write_text("wrong\n")
    refused = run_job("--check", timeout=300)
    assert refused.returncode == EXIT_BAD_INPUT and "access to s3://" in refused.stderr
    (credentials / "secret-access-key").unlink()
    missing = run_job("--check", timeout=300)
    assert missing.returncode == EXIT_BAD_INPUT
    assert f"S3 credentials file {credentials / 'secret-access-key'} is missing" in missing.stderr


@pytest.fixture(scope="module")
def check_inputs(tmp_path_factory) -> dict[str, str]:
    """Data and a hub entry (descriptor and a stand-in checkpoint) enough for `python -m job --check`."""
    base = tmp_path_factory.mktemp("secrets")
    stand_in = base / "stand-in.ckpt"
    stand_in.write_bytes(b"checkpoint")
    publish(base / "hub", "tests/1.0/entry", "googlenet", stand_in)
    return {
        "FT_MODEL": "tests/1.0/entry",
        "FT_HUB_MIRROR": str(base / "hub"),
        "FT_HUB_CACHE": str(base / "cache"),
        "FT_TRAIN_DATA": str(write_tree(base / "train", TWO_CLASSES)),
        "FT_EVAL_DATA": str(write_tree(base / "eval", TWO_CLASSES)),
        "FT_S3_MAX_ATTEMPTS": "1",
        "FT_BATCH_SIZE": "4",  # the stand-in data holds 6 training images
    }


@pytest.mark.parametrize(
    "args, secret, code",
    [
        pytest.param(["--check"], SECRET_KEY, 0, id="check-passes"),
        pytest.param(["--check"], DISTINCTIVE_SECRET, EXIT_BAD_INPUT, id="check-refused"),
        pytest.param([], DISTINCTIVE_SECRET, EXIT_BAD_INPUT, id="run-refused", marks=pytest.mark.slow),
    ],
)
def test_the_jobs_logs_never_hold_the_secret_key(check_inputs, s3_server, args, secret, code):
    environment = job_environment(
        **check_inputs, FT_OUTPUT=f"s3://{s3_server.new_bucket()}/run", AWS_SECRET_ACCESS_KEY=secret
    )
    result = subprocess.run(
        [sys.executable, "-m", "job", *args], env=environment, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == code, result.stderr[-2000:]
    assert secret not in result.stdout + result.stderr
    assert code == 0 or "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in result.stderr
