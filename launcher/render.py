"""A job spec as Kubernetes objects: built as data and emitted with yaml.safe_dump (no text template, so no
value can change the document's structure). The Helm chart renders the same objects (tests compare them)."""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from contract import pod
from contract.paths import PUBLIC_HUB
from contract.predict import env_name as predict_env_name
from contract.settings import Settings, env_name
from launcher.errors import SpecError
from launcher.spec import JobSettings, JobSpec

DNS_PORT = 53
DEFAULT_PORTS = {"https": 443, "http": 80}
AWS_ENDPOINT = "https://s3.amazonaws.com"  # no storage.endpoint: AWS S3


@dataclass(frozen=True)
class Volume:
    """A writable emptyDir: the root filesystem is read-only."""

    name: str
    path: str
    empty_dir: dict


def volumes(spec: JobSpec) -> list[Volume]:
    sources = {
        "scratch": {"sizeLimit": spec.resources.scratch},
        "cache": {"sizeLimit": spec.resources.scratch},
        "shm": {"medium": "Memory", "sizeLimit": spec.resources.shm},
    }
    return [Volume(name, path, sources[name]) for name, path in pod.VOLUME_MOUNTS.items()]


def setting_text(value: Any) -> str:
    """A setting as an environment value, numbers written as Go's JSON encoder writes them (the chart's
    `toJson`), so that both renderers give the same text: 20240101 never becomes 2.0240101e+07."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        if 1e-6 <= abs(value) < 1e21:
            return format(decimal.Decimal(repr(value)), "f")
        mantissa, exponent = repr(value).split("e")
        return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0')}"
    return str(value)


def job_environment(spec: JobSpec) -> dict[str, str]:
    """The plain (non-secret) variables of the container, in order."""
    environment = {
        "FT_MODEL": spec.model,
        "FT_TRAIN_DATA": spec.train_data,
        "FT_EVAL_DATA": spec.eval_data,
        "FT_OUTPUT": spec.output,
        **predict_environment(spec),
        **pod.LAYOUT_ENVIRONMENT,
    }
    if spec.workers > 1 or spec.processes_per_pod > 1:
        environment.update(FT_WORKERS=str(spec.workers), FT_DEVICES_PER_WORKER=str(spec.processes_per_pod))
    if spec.workers > 1:
        environment["FT_WORKER_SERVICE"] = spec.worker_service
    if spec.storage.credentials_secret:
        environment["FT_S3_CREDENTIALS_DIR"] = pod.CREDENTIALS
    if spec.implied_device_target is not None:
        environment["FT_DEVICE_TARGET"] = spec.implied_device_target.value
    environment.update({env_name(key): setting_text(value) for key, value in sorted(_settings(spec).items())})
    if spec.storage.endpoint:
        environment["AWS_ENDPOINT_URL"] = spec.storage.endpoint
    if spec.storage.region:
        environment["AWS_DEFAULT_REGION"] = spec.storage.region
    environment.update(sorted(spec.env.items()))
    return environment


def predict_environment(spec: JobSpec) -> dict[str, str]:
    """A predict Job's FT_PREDICT_* variables (it reads the job's settings too, as training does)."""
    if spec.mode != "predict":
        return {}
    options = spec.predict
    chosen = {"run": options.run or spec.output, "images": options.images, "to": options.to, "top_k": options.top_k}
    return {predict_env_name(key): setting_text(value) for key, value in chosen.items()}


def container_args(spec: JobSpec) -> list[str]:
    """The container's arguments after its command: a predict Job runs `python -m job predict`."""
    return [pod.PREDICT_COMMAND] if spec.mode == "predict" else []


def _settings(spec: JobSpec) -> dict[str, Any]:
    return spec.settings.model_dump(exclude_none=True)


def check_settings(spec: JobSpec) -> None:
    """The job's own cross-setting checks (lr_init <= lr_max, batch divisible by the processes, ...), reported by
    their spec keys."""
    predicting = predict_environment(spec)  # python -m job predict's own options, checked by the job
    environment = {
        key[len("FT_") :].lower(): value
        for key, value in job_environment(spec).items()
        if key.startswith("FT_") and key not in predicting
    }
    try:
        Settings.model_validate(environment)
    except ValidationError as exc:
        message = "; ".join(item["msg"].removeprefix("Value error, ") for item in exc.errors())
        keys = {env_name(key): f"settings.{key}" for key in JobSettings.model_fields}
        keys.update(FT_WORKERS="workers", FT_DEVICES_PER_WORKER="devices_per_worker")
        for variable in sorted(keys, key=len, reverse=True):
            message = message.replace(variable, keys[variable])
        raise SpecError(f"spec: {message}") from exc


def escape_expansion(value: str) -> str:
    """Kubernetes expands $(NAME) in env values; doubling every $ keeps a user's value literal."""
    return value.replace("$", "$$")


def _environment_list(spec: JobSpec) -> list[dict]:
    return [{"name": name, "value": escape_expansion(value)} for name, value in job_environment(spec).items()]


def _labels(spec: JobSpec) -> dict[str, str]:
    labels = {
        **_selector(spec),
        "app.kubernetes.io/component": "fine-tuning",
        "app.kubernetes.io/managed-by": "launcher",
    }
    if spec.queue:
        labels["kueue.x-k8s.io/queue-name"] = spec.queue
    return {**labels, **spec.labels}


def _selector(spec: JobSpec) -> dict[str, str]:
    """Labels that pick this job's pods (the headless Service's and the NetworkPolicy's selector)."""
    return {"app.kubernetes.io/name": pod.APP_NAME, "app.kubernetes.io/instance": spec.name}


def _metadata(spec: JobSpec, name: str, annotations: bool = False) -> dict:
    metadata: dict[str, Any] = {"name": name}
    if spec.namespace:
        metadata["namespace"] = spec.namespace
    metadata["labels"] = _labels(spec)
    if annotations and spec.annotations:
        metadata["annotations"] = dict(spec.annotations)
    return metadata


def _master_port(spec: JobSpec) -> int:
    return spec.settings.master_port or Settings.model_fields["master_port"].default


def _resources(spec: JobSpec) -> dict:
    requests: dict[str, Any] = {"cpu": str(spec.resources.cpu), "memory": spec.resources.memory}
    limits: dict[str, Any] = {"memory": spec.resources.memory}
    if spec.resources.accelerators:
        requests[spec.resources.accelerator_resource] = spec.resources.accelerators
        limits[spec.resources.accelerator_resource] = spec.resources.accelerators
    return {"requests": requests, "limits": limits}


def _container(spec: JobSpec) -> dict:
    mounts: list[dict[str, Any]] = [{"name": volume.name, "mountPath": volume.path} for volume in volumes(spec)]
    if spec.storage.credentials_secret:
        mounts.append({"name": "s3-credentials", "mountPath": pod.CREDENTIALS, "readOnly": True})
    return {
        "name": pod.CONTAINER,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(pod.COMMAND),
        **({"args": container_args(spec)} if container_args(spec) else {}),
        "env": _environment_list(spec),
        "resources": _resources(spec),
        "securityContext": pod.container_security_context(),
        "terminationMessagePolicy": pod.TERMINATION_MESSAGE_POLICY,
        "volumeMounts": mounts,
    }


def _volumes(spec: JobSpec) -> list[dict]:
    listed: list[dict] = [{"name": volume.name, "emptyDir": volume.empty_dir} for volume in volumes(spec)]
    if spec.storage.credentials_secret:
        listed.append(
            {
                "name": "s3-credentials",
                "secret": {
                    "secretName": spec.storage.credentials_secret,
                    "defaultMode": pod.CREDENTIALS_MODE,
                    "items": [
                        {"key": spec.storage.access_key_id_key, "path": pod.ACCESS_KEY_FILE},
                        {"key": spec.storage.secret_access_key_key, "path": pod.SECRET_KEY_FILE},
                    ],
                },
            }
        )
    return listed


def pod_spec(spec: JobSpec) -> dict:
    """The pod template's spec."""
    body: dict[str, Any] = {"restartPolicy": "Never"}
    if spec.workers > 1:
        body["subdomain"] = spec.worker_service
    body["terminationGracePeriodSeconds"] = pod.termination_grace_seconds(spec.settings.term_grace_seconds)
    body["enableServiceLinks"] = False
    if spec.service_account:
        body["serviceAccountName"] = spec.service_account
    body["automountServiceAccountToken"] = spec.service_account_token
    if spec.priority_class:
        body["priorityClassName"] = spec.priority_class
    if spec.node_selector:
        body["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        body["tolerations"] = [toleration.model_dump(exclude_none=True) for toleration in spec.tolerations]
    if spec.image_pull_secrets:
        body["imagePullSecrets"] = [{"name": name} for name in spec.image_pull_secrets]
    body["securityContext"] = pod.pod_security_context()
    body["containers"] = [_container(spec)]
    body["volumes"] = _volumes(spec)
    return body


def job(spec: JobSpec) -> dict:
    body: dict[str, Any] = {}
    if spec.workers > 1:
        # One pod per worker, each knowing its index; a lost pod fails the group's attempt, every pod fails and
        # is replaced, and the new group resumes from the last committed epoch: the limit counts pods.
        body.update(completionMode="Indexed", completions=spec.workers, parallelism=spec.workers)
    body["backoffLimit"] = spec.retries * spec.workers
    if spec.deadline_seconds is not None:
        body["activeDeadlineSeconds"] = spec.deadline_seconds
    if spec.ttl_seconds_after_finished is not None:
        body["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    body["podFailurePolicy"] = pod.pod_failure_policy()
    template_metadata: dict[str, Any] = {"labels": _labels(spec)}
    if spec.annotations:
        template_metadata["annotations"] = dict(spec.annotations)
    body["template"] = {"metadata": template_metadata, "spec": pod_spec(spec)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(spec, spec.name, annotations=True),
        "spec": body,
    }


def worker_service(spec: JobSpec) -> dict:
    """Headless, publishing pods before they are ready: pod 0's name must resolve while msrun starts."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, spec.worker_service),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": _selector(spec),
            "ports": [{"name": "msrun", "port": _master_port(spec)}],
        },
    }


def endpoint_ports(spec: JobSpec) -> list[int]:
    """TCP ports of the places the job reaches over the network: the S3 endpoint, the hub mirror, a descriptor
    URL, the MLflow tracking server, and any the spec adds."""
    urls = [spec.storage.endpoint or AWS_ENDPOINT, spec.settings.hub_mirror or PUBLIC_HUB, spec.model]
    urls += [spec.settings.mlflow_tracking_uri or ""]
    ports = set(spec.network_policy.extra_egress_ports)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in DEFAULT_PORTS:
            ports.add(parts.port or DEFAULT_PORTS[parts.scheme])
    return sorted(ports)


def network_policy(spec: JobSpec) -> dict:
    """Ingress only from the same job's pods; egress to DNS, to the same job's pods and to the endpoints' ports.
    Pod-to-pod traffic is not limited to msrun's port: NCCL, HCCL and MindSpore's CPU collectives open ports
    of their own."""
    same_job = [{"podSelector": {"matchLabels": _selector(spec)}}]
    cidrs = [{"ipBlock": {"cidr": cidr}} for cidr in spec.network_policy.egress_cidrs]
    egress: list[dict] = [
        {"ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]},
        {"to": cidrs, "ports": [{"protocol": "TCP", "port": port} for port in endpoint_ports(spec)]},
    ]
    ingress: list[dict] = []
    if spec.workers > 1:
        ingress.append({"from": same_job})
        egress.append({"to": same_job})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec, spec.name),
        "spec": {
            "podSelector": {"matchLabels": _selector(spec)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def manifests(spec: JobSpec) -> list[dict]:
    """The objects of one job: the Job, with several workers the Service naming its pods, and its
    NetworkPolicy."""
    check_settings(spec)
    documents = [worker_service(spec)] if spec.workers > 1 else []
    documents.append(job(spec))
    if spec.network_policy.enabled:
        documents.append(network_policy(spec))
    return documents


def render(spec: JobSpec) -> str:
    """The manifests of one job, as a YAML stream."""
    return yaml.safe_dump_all(manifests(spec), sort_keys=False, width=120, allow_unicode=False)
