"""Rendering a job spec into Kubernetes manifests from the Jinja2 templates in k8s/."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import jinja2
import yaml

from launcher.errors import SpecError
from launcher.spec import JobSpec
from launcher.yamlsafe import flow

CONTAINER = "finetune"
COMMAND = ["python", "-m", "job"]
USER_ID = 10001  # the image's non-root user
BAD_INPUT_EXIT_CODE = 2  # job.errors.EXIT_BAD_INPUT: a retry cannot help
TERM_GRACE_SECONDS = 25  # the job's FT_TERM_GRACE_SECONDS default; the pod gets 15 s more to exit


@dataclass(frozen=True)
class Volume:
    """A writable emptyDir: the root filesystem is read-only."""

    name: str
    path: str
    empty_dir: dict


def volumes(spec: JobSpec) -> list[Volume]:
    return [Volume("scratch", "/scratch", {"sizeLimit": spec.resources.scratch}),
            Volume("cache", "/cache", {"sizeLimit": spec.resources.scratch}),
            Volume("shm", "/dev/shm", {"medium": "Memory", "sizeLimit": spec.resources.shm})]


def _setting_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def job_environment(spec: JobSpec) -> dict[str, str]:
    """The plain (non-secret) variables of the container, in order."""
    environment = {"FT_MODEL": spec.model, "FT_TRAIN_DATA": spec.train_data, "FT_EVAL_DATA": spec.eval_data,
                   "FT_OUTPUT": spec.output, "FT_HUB_CACHE": "/cache/hub", "FT_DATA_CACHE": "/cache/data",
                   "FT_SCRATCH_DIR": "/scratch", "HOME": "/scratch/home", "MPLCONFIGDIR": "/scratch/matplotlib"}
    environment.update({f"FT_{key.upper()}": _setting_value(value) for key, value in spec.settings.items()})
    if spec.workers > 1 or spec.processes_per_pod > 1:
        environment.update(FT_WORKERS=str(spec.workers), FT_DEVICES_PER_WORKER=str(spec.processes_per_pod))
    if spec.workers > 1:
        environment["FT_WORKER_SERVICE"] = spec.worker_service
    if spec.storage.endpoint:
        environment["AWS_ENDPOINT_URL"] = spec.storage.endpoint
    if spec.storage.region:
        environment["AWS_DEFAULT_REGION"] = spec.storage.region
    environment.update(spec.env)
    return environment


def secret_environment(spec: JobSpec) -> dict[str, tuple[str, str]]:
    """Variables taken from a Secret: name -> (secret name, key)."""
    secret = spec.storage.credentials_secret
    if not secret:
        return {}
    return {"AWS_ACCESS_KEY_ID": (secret, spec.storage.access_key_id_key),
            "AWS_SECRET_ACCESS_KEY": (secret, spec.storage.secret_access_key_key)}


def check_settings(spec: JobSpec) -> None:
    """Validate the job settings with the job's own model, reporting them by their spec keys."""
    from job.config import load_settings
    from job.errors import BadInput

    environment = {key: value for key, value in job_environment(spec).items() if key.startswith("FT_")}
    try:
        load_settings(environment)
    except BadInput as exc:
        message = str(exc).replace(". Fix these variables (python -m job --help lists them all).", "")
        for key in spec.settings:
            message = message.replace(f"FT_{key.upper()}", f"settings.{key}")
        raise SpecError(f"spec: {message}") from exc


def _resources(spec: JobSpec) -> dict:
    requests = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    limits = {"memory": spec.resources.memory}
    if spec.resources.accelerators:
        requests[spec.resources.accelerator_resource] = spec.resources.accelerators
        limits[spec.resources.accelerator_resource] = spec.resources.accelerators
    return {"requests": requests, "limits": limits}


def _labels(spec: JobSpec) -> dict[str, str]:
    labels = {**spec.labels, "app.kubernetes.io/name": "mindspore-finetune", "app.kubernetes.io/instance": spec.name,
              "app.kubernetes.io/component": "fine-tuning", "app.kubernetes.io/managed-by": "launcher"}
    if spec.queue:
        labels["kueue.x-k8s.io/queue-name"] = spec.queue
    return labels


def _selector(spec: JobSpec) -> dict[str, str]:
    """Labels that pick this job's pods (the headless Service's selector)."""
    return {key: value for key, value in _labels(spec).items()
            if key in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def _master_port(spec: JobSpec) -> int:
    from job.config import Settings

    return int(spec.settings.get("master_port", Settings.model_fields["master_port"].default))


def escape_expansion(value: str) -> str:
    """Kubernetes expands $(NAME) in env values; doubling every $ keeps a user's value literal."""
    return value.replace("$", "$$")


def _environment_list(spec: JobSpec) -> list[dict]:
    plain = [{"name": name, "value": escape_expansion(value)} for name, value in job_environment(spec).items()]
    secret = [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
              for name, (secret, key) in secret_environment(spec).items()]
    return plain + secret


def _template(name: str) -> jinja2.Template:
    templates = str(files("launcher.templates"))  # k8s/ in the source tree
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), undefined=jinja2.StrictUndefined,
                                     autoescape=False, keep_trailing_newline=True)
    environment.filters["yaml"] = flow
    return environment.get_template(name)


def render(spec: JobSpec) -> str:
    """The manifests of one job, as a YAML stream."""
    check_settings(spec)
    text = _template("job.yaml.j2").render(
        spec=spec, labels=_labels(spec), container=CONTAINER, command=COMMAND, env=_environment_list(spec),
        resources=_resources(spec), volumes=volumes(spec), user_id=USER_ID, bad_input_exit_code=BAD_INPUT_EXIT_CODE,
        termination_grace_seconds=TERM_GRACE_SECONDS + 15, master_port=_master_port(spec),
        selector=_selector(spec))
    return text


def manifests(spec: JobSpec) -> list[dict]:
    """The rendered manifests, parsed."""
    return [document for document in yaml.safe_load_all(render(spec)) if document]
