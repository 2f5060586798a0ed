"""Job specs: one YAML file describing one fine-tuning job, validated with messages that name the key."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from launcher.errors import SpecError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                            r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
SECRET_LIKE = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY)", re.IGNORECASE)
JOB_NAME_MAX = 52  # leaves room for the suffixes Kubernetes adds to the Job's pods
# Settings the manifest sets itself (from top-level spec keys or the container layout), not under `settings:`.
RESERVED_SETTINGS = {"model", "train_data", "eval_data", "output", "hub_cache", "data_cache", "scratch_dir", "workers",
                     "devices_per_worker", "worker_service"}


def _check(pattern: re.Pattern, value: str, what: str) -> str:
    if not pattern.match(value):
        raise ValueError(f"{value!r} is not a valid {what}")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(Strict):
    cpu: str = Field("4", description="CPU request, e.g. 4 or 500m.")
    memory: str = Field("16Gi", description="Memory request and limit.")
    accelerators: int = Field(0, ge=0, description="Accelerators per pod.")
    accelerator_resource: str = Field("nvidia.com/gpu", description="Extended resource name, e.g. "
                                                                    "huawei.com/Ascend910.")
    scratch: str = Field("50Gi", description="Size limit of the scratch and cache volumes.")
    shm: str = Field("2Gi", description="Size of the memory-backed /dev/shm.")

    @field_validator("cpu", "memory", "scratch", "shm", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> str:
        return _check(QUANTITY, str(value), "Kubernetes quantity (e.g. 4, 500m, 16Gi)")

    @field_validator("accelerator_resource")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        return _check(QUALIFIED_NAME, value, "resource name (e.g. nvidia.com/gpu)")


class Storage(Strict):
    endpoint: str | None = Field(None, description="S3 endpoint URL for S3-compatible servers "
                                                   "(AWS_ENDPOINT_URL).")
    region: str | None = Field(None, description="AWS_DEFAULT_REGION.")
    credentials_secret: str | None = Field(None, description="Name of an existing Secret holding the S3 "
                                                             "credentials.")
    access_key_id_key: str = Field("AWS_ACCESS_KEY_ID", description="Key of the access key id in the Secret.")
    secret_access_key_key: str = Field("AWS_SECRET_ACCESS_KEY", description="Key of the secret key in the Secret.")

    @field_validator("endpoint")
    @classmethod
    def _no_userinfo(cls, value: str | None) -> str | None:
        if value and re.match(r"^[a-z]+://[^/]*@", value):
            raise ValueError("credentials in the endpoint URL are refused; put them in a Secret and name it in "
                             "storage.credentials_secret")
        return value

    @field_validator("credentials_secret")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        return None if value is None else _check(DNS_SUBDOMAIN, value, "Secret name")

    @field_validator("access_key_id_key", "secret_access_key_key")
    @classmethod
    def _secret_key(cls, value: str) -> str:
        return _check(re.compile(r"^[-._a-zA-Z0-9]+$"), value, "Secret key")


class JobSpec(Strict):
    """One fine-tuning job."""

    name: str = Field(description="Job name (DNS label, at most 52 characters).")
    namespace: str = Field("default", description="Namespace.")
    image: str = Field(description="Container image holding the job.")
    model: str = Field(description="Hub model id, descriptor URL or path (FT_MODEL).")
    train_data: str = Field(description="Training images (FT_TRAIN_DATA).")
    eval_data: str = Field(description="Evaluation images (FT_EVAL_DATA).")
    output: str = Field(description="Output location (FT_OUTPUT).")
    settings: dict[str, Any] = Field(default_factory=dict, description="Other job settings by name "
                                                                       "(epochs: 60 sets FT_EPOCHS).")
    resources: Resources = Field(default_factory=Resources)
    storage: Storage = Field(default_factory=Storage)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    priority_class: str | None = None
    service_account: str | None = Field(None, description="Run as this ServiceAccount (its token is mounted); "
                                                          "unset: no token.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra non-secret environment variables.")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    deadline_seconds: int | None = Field(None, ge=1, description="activeDeadlineSeconds of the Job.")
    retries: int = Field(6, ge=0, description="Attempts after a failure, each resuming (backoffLimit; with several "
                                               "workers, retries x workers, since a failed attempt fails every pod).")
    workers: int = Field(1, ge=1, le=1024, description="Pods training together, data parallel through msrun; above "
                                                       "1, an Indexed Job plus a headless Service.")
    devices_per_worker: int | None = Field(None, ge=1, description="Training processes per pod, one per device; "
                                                                   "unset: resources.accelerators, or 1.")
    ttl_seconds_after_finished: int | None = Field(7 * 24 * 3600, ge=0)
    queue: str | None = Field(None, description="Kueue LocalQueue name.")

    @property
    def processes_per_pod(self) -> int:
        return self.devices_per_worker or self.resources.accelerators or 1

    @property
    def worker_service(self) -> str:
        """The headless Service giving the pods of a multi-pod job their DNS names."""
        return f"{self.name}-workers"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check(DNS_LABEL, value, "name (lower-case letters, digits and '-')")
        if len(value) > JOB_NAME_MAX:
            raise ValueError(f"{value!r} is longer than {JOB_NAME_MAX} characters")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _check(DNS_LABEL, value, "namespace")

    @field_validator("priority_class", "service_account")
    @classmethod
    def _subdomain(cls, value: str | None) -> str | None:
        return None if value is None else _check(DNS_SUBDOMAIN, value, "name")

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None) -> str | None:
        return None if value is None else _check(LABEL_VALUE, value, "queue name (a label value)")

    @field_validator("labels", "node_selector")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            _check(QUALIFIED_NAME, key, "label key")
            _check(LABEL_VALUE, item, "label value (at most 63 letters, digits, '-', '_', '.')")
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            _check(QUALIFIED_NAME, key, "annotation key")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            _check(ENV_NAME, key, "environment variable name")
            if SECRET_LIKE.search(key):
                raise ValueError(f"{key} looks like a secret; inline secret values are refused: put it in a "
                                 f"Secret (storage.credentials_secret for S3 credentials)")
        return value

    @model_validator(mode="after")
    def _settings(self) -> "JobSpec":
        from job.config import Settings

        known = set(Settings.model_fields) - RESERVED_SETTINGS
        for key in self.settings:
            if key in RESERVED_SETTINGS:
                raise ValueError(f"settings.{key}: set by the manifest itself; use the top-level key or leave "
                                 f"it out")
            if key not in known:
                guess = difflib.get_close_matches(key, sorted(known), n=1)
                raise ValueError(f"settings.{key}: not a job setting" + (f" (did you mean {guess[0]}?)" if guess
                                                                         else ""))
        return self


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"]) or "spec"


def describe(error: ValidationError) -> str:
    """Every problem as `key: message`, on one line."""
    problems = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "required but not set"
        elif item["type"] == "extra_forbidden":
            message = "not a spec key"
        location = _location(item)
        problems.append(message if message.startswith("settings.") else f"{location}: {message}")
    return "; ".join(problems)


def apply_overrides(document: dict, overrides: list[str]) -> dict:
    """`key.sub=value` assignments (values parsed as YAML scalars) applied to a spec document."""
    for override in overrides:
        path, separator, raw = override.partition("=")
        if not separator or not path:
            raise SpecError(f"--set {override!r}: use --set key=value (for example --set settings.epochs=5)")
        target = document
        keys = path.split(".")
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise SpecError(f"--set {override!r}: {key} is not a mapping")
        try:
            target[keys[-1]] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            target[keys[-1]] = raw
    return document


def load_spec(path: Path, overrides: list[str] | None = None) -> JobSpec:
    """Read, override and validate a spec file; every problem is reported as a SpecError."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"spec {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"spec {path} cannot be read ({exc})") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"spec {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(document, dict):
        raise SpecError(f"spec {path} must be a mapping of keys (name, image, model, ...)")
    document = apply_overrides(document, overrides or [])
    try:
        return JobSpec.model_validate(document)
    except ValidationError as exc:
        raise SpecError(f"spec {path}: {describe(exc)}") from exc
