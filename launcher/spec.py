"""Job specs: one YAML file describing one fine-tuning job, validated with messages that name the key.

Every constraint the Kubernetes API server or the job would enforce is in this model, as a JSON-schema-visible
constraint where one can express it (the chart's values.schema.json is generated from it) and as a check
below where not.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator
from pydantic_core import ErrorDetails

from contract.pod import RESERVED_NAMES, RESERVED_PREFIXES, RESERVED_SETTINGS
from contract.predict import PredictOptions
from contract.settings import HTTP_URL, DeviceTarget, Settings
from launcher.errors import SpecError

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
NO_SPACE = r"^\S+$"
CIDR = r"^[0-9a-fA-F.:]+/[0-9]{1,3}$"
ENDPOINT = HTTP_URL
USERINFO = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*@"  # scheme://user:password@host: credentials in a URL


def any_case(word: str) -> str:
    """A regex matching `word` in any letter case, without inline flags (Go's and JavaScript's regex engines
    differ on those; JSON schema validators use either)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


SECRET_LIKE = (
    "("
    + "|".join(
        any_case(word) for word in ("SECRET", "PASSWORD", "PASSWD", "TOKEN", "CREDENTIAL", "PRIVATE", "ACCESS_KEY")
    )
    + ")"
)
RESERVED_ENV = (
    r"^(" + "|".join(any_case(prefix) for prefix in RESERVED_PREFIXES) + r")|^(" + "|".join(RESERVED_NAMES) + r")$"
)
RESERVED_LABELS = r"^(app\.kubernetes\.io/|helm\.sh/|kueue\.x-k8s\.io/)"

# What a pattern means, for error messages.
MEANING = {
    DNS_LABEL: "DNS label (lower-case letters, digits and '-')",
    DNS_SUBDOMAIN: "name (lower-case letters, digits, '-' and '.')",
    LABEL_VALUE: "label value (letters, digits, '-', '_', '.'; alphanumeric at both ends)",
    QUALIFIED_NAME: "key (optional DNS prefix/, then at most 63 letters, digits, '-', '_', '.')",
    ENV_NAME: "environment variable name",
    QUANTITY: "Kubernetes quantity (e.g. 4, 500m, 16Gi)",
    SECRET_KEY: "Secret key",
    NO_SPACE: "value (no spaces)",
    CIDR: "CIDR (e.g. 10.0.0.0/8)",
    ENDPOINT: "endpoint URL (http:// or https://, no credentials)",
}

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
JOB_NAME_MAX = 52  # leaves room for the suffixes Kubernetes adds to the Job's pods
ANNOTATIONS_MAX_BYTES = 256 * 1024  # the API server's limit on all annotations of an object together
ACCELERATOR_TARGETS = {"nvidia.com/gpu": DeviceTarget.GPU, "huawei.com/Ascend": DeviceTarget.ASCEND}  # prefixes


def _pattern(pattern: str, max_length: int | None = None, **extra: Any) -> Any:
    return Field(pattern=pattern, max_length=max_length, **extra)


DnsLabel = Annotated[str, _pattern(DNS_LABEL, 63)]
DnsSubdomain = Annotated[str, _pattern(DNS_SUBDOMAIN, 253)]
LabelValue = Annotated[str, _pattern(LABEL_VALUE, 63)]
QualifiedName = Annotated[str, _pattern(QUALIFIED_NAME, 317)]
Quantity = Annotated[str, _pattern(QUANTITY, 64)]
Location = Annotated[str, Field(min_length=1, json_schema_extra={"not": {"pattern": USERINFO}})]
NO_USERINFO = Field(json_schema_extra={"not": {"pattern": USERINFO}})
FreeText = Annotated[str, NO_USERINFO]


def _no_userinfo(value: Any, where: str) -> None:
    """Credentials inside a URL end up in the manifest and in logs: refuse them in every string."""
    if isinstance(value, str) and re.match(USERINFO, value):
        raise ValueError(
            f"{where}: credentials in a URL are refused; put them in a Secret and name it in storage.credentials_secret"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _no_userinfo(item, f"{where}.{key}" if where else str(key))
    if isinstance(value, list):
        for index, item in enumerate(value):
            _no_userinfo(item, f"{where}.{index}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _spec_settings_model() -> type[BaseModel]:
    """The job's settings that a spec may set, each optional, with the job's types and ranges (paths as text)."""
    fields: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        if name in RESERVED_SETTINGS:
            continue
        annotation = field.annotation
        text = repr(annotation)
        if "Path" in text:
            annotation = str
        metadata = list(field.metadata)
        if annotation is str:
            metadata.append(NO_USERINFO)  # free text may hold a URL: no credentials in it
        parameters = (annotation, *metadata)
        typed: Any = Annotated[parameters] if metadata else annotation
        fields[name] = (typed | None, Field(None, description=field.description))
    return create_model("JobSettings", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


if TYPE_CHECKING:  # a model built at import time: its fields are the job's, each optional
    JobSettings = Any
else:
    JobSettings = _spec_settings_model()


class Resources(Strict):
    cpu: Quantity | Annotated[int, Field(ge=1)] = Field("4", description="CPU request, e.g. 4 or 500m.")
    memory: Quantity = Field("16Gi", description="Memory request and limit.")
    accelerators: int = Field(
        0,
        ge=0,
        le=1024,
        description="Accelerators per pod; with them, "
        "settings.device_target follows accelerator_resource "
        "(GPU for nvidia.com/gpu, Ascend for "
        "huawei.com/Ascend*) unless set.",
    )
    accelerator_resource: QualifiedName = Field(
        "nvidia.com/gpu", description="Extended resource name, e.g. huawei.com/Ascend910."
    )
    scratch: Quantity = Field("50Gi", description="Size limit of the scratch and cache volumes.")
    shm: Quantity = Field("2Gi", description="Size of the memory-backed /dev/shm.")


class Storage(Strict):
    endpoint: Annotated[str, _pattern(ENDPOINT, 2048)] | None = Field(
        None, description="S3 endpoint URL for S3-compatible servers (AWS_ENDPOINT_URL)."
    )
    region: Annotated[str, _pattern(r"^[a-z0-9][-a-z0-9]*$", 64)] | None = Field(
        None, description="AWS_DEFAULT_REGION."
    )
    credentials_secret: DnsSubdomain | None = Field(
        None,
        description="Name of an existing Secret holding the S3 "
        "credentials; mounted as files, never in "
        "the environment.",
    )
    access_key_id_key: Annotated[str, _pattern(SECRET_KEY, 253)] = Field(
        "AWS_ACCESS_KEY_ID", description="Key of the access key id in the Secret."
    )
    secret_access_key_key: Annotated[str, _pattern(SECRET_KEY, 253)] = Field(
        "AWS_SECRET_ACCESS_KEY", description="Key of the secret access key in the Secret."
    )


class NetworkPolicy(Strict):
    enabled: bool = Field(
        True,
        description="A NetworkPolicy for the job's pods: ingress only from the same job's "
        "pods, egress to DNS, to the job's other pods and to the storage and "
        "hub endpoints' ports. Turn off where the CNI has no NetworkPolicy.",
    )
    egress_cidrs: list[Annotated[str, _pattern(CIDR, 64)]] = Field(
        ["0.0.0.0/0", "::/0"],
        min_length=1,
        description="Where the endpoints may be (NetworkPolicy cannot name "
        "hosts): narrow to the storage's and hub's networks.",
    )
    extra_egress_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        [], description="More TCP ports the pods may reach on egress_cidrs."
    )


class Toleration(Strict):
    key: QualifiedName | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None


_PREDICT = PredictOptions.model_fields


class Predict(Strict):
    """What a `mode: predict` Job classifies (python -m job predict's options, FT_PREDICT_*)."""

    run: Location | None = Field(None, description=f"{_PREDICT['run'].description} Unset: output.")
    images: Location | None = Field(None, description=_PREDICT["images"].description)
    to: Location | None = Field(None, description=_PREDICT["to"].description)
    top_k: int = Field(_PREDICT["top_k"].default, ge=1, le=INT32_MAX, description=_PREDICT["top_k"].description)


class JobSpec(Strict):
    """One fine-tuning job."""

    name: Annotated[str, _pattern(DNS_LABEL, JOB_NAME_MAX)] = Field(
        description="Job name (DNS label, at most 52 characters)."
    )
    namespace: DnsLabel | None = Field(None, description="Namespace; unset: the kubeconfig context's.")
    image: Annotated[str, _pattern(NO_SPACE, 4096)] = Field(description="Container image holding the job.")
    model: Location = Field(description="Hub model id, descriptor URL or path (FT_MODEL).")
    train_data: Location = Field(
        description="Training images, ImageFolder layout: s3://bucket/prefix or a path (FT_TRAIN_DATA)."
    )
    eval_data: Location = Field(description="Evaluation images (FT_EVAL_DATA).")
    output: Location = Field(
        description="Where checkpoints, metrics and results go (FT_OUTPUT); a run resumes from what it holds."
    )
    mode: Literal["train", "predict"] = Field(
        "train",
        description="train: fine-tune (python -m job); predict: classify predict.images with the finished run "
        "(python -m job predict, one pod, the same settings, storage and security).",
    )
    predict: Predict = Field(default_factory=Predict, description="The images a predict Job classifies.")
    settings: JobSettings = Field(
        default_factory=JobSettings,
        description="Other job settings by name: epochs: 60 sets FT_EPOCHS (python -m job --help lists them).",
    )
    resources: Resources = Field(default_factory=Resources)
    storage: Storage = Field(default_factory=Storage)
    network_policy: NetworkPolicy = Field(default_factory=NetworkPolicy)
    node_selector: dict[QualifiedName, LabelValue] = Field({}, description="nodeSelector of the pods.")
    tolerations: list[Toleration] = Field([], description="Tolerations of the pods.")
    priority_class: DnsSubdomain | None = Field(None, description="priorityClassName of the pods.")
    service_account: DnsSubdomain | None = Field(None, description="Run as this ServiceAccount.")
    service_account_token: bool = Field(
        False,
        description="Mount the ServiceAccount's API token; the job never "
        "calls the Kubernetes API, so only for webhooks that "
        "need it (workload identity).",
    )
    image_pull_secrets: list[DnsSubdomain] = Field(
        [], description="Secrets for pulling the image from a private registry."
    )
    env: dict[Annotated[str, _pattern(ENV_NAME, 256)], FreeText] = Field(
        {},
        description="Extra non-secret environment variables; FT_*, AWS_*, HOME, MPLCONFIGDIR are the manifest's.",
        json_schema_extra={"propertyNames": {"not": {"anyOf": [{"pattern": RESERVED_ENV}, {"pattern": SECRET_LIKE}]}}},
    )
    labels: dict[QualifiedName, LabelValue] = Field(
        {},
        description="Extra labels of the Job and its pods (app.kubernetes.io/*, helm.sh/*, kueue.x-k8s.io/* "
        "are the manifest's).",
        json_schema_extra={"propertyNames": {"not": {"pattern": RESERVED_LABELS}}},
    )
    annotations: dict[QualifiedName, str] = Field(
        {}, description="Annotations of the Job and its pods (256 KiB together at most)."
    )
    deadline_seconds: Annotated[int, Field(ge=1, le=INT64_MAX)] | None = Field(
        None, description="activeDeadlineSeconds of the Job."
    )
    retries: int = Field(
        6,
        ge=0,
        le=INT32_MAX,
        description="Attempts after a failure, each resuming (backoffLimit; "
        "with several workers, retries x workers, since a "
        "failed attempt fails every pod).",
    )
    workers: int = Field(
        1,
        ge=1,
        le=1024,
        description="Pods training together, data parallel through msrun; "
        "above 1, an Indexed Job plus a headless Service.",
    )
    devices_per_worker: Annotated[int, Field(ge=1, le=1024)] | None = Field(
        None, description="Training processes per pod, one per device; unset: resources.accelerators, or 1."
    )
    ttl_seconds_after_finished: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = Field(
        7 * 24 * 3600, description="ttlSecondsAfterFinished of the Job."
    )
    queue: LabelValue | None = Field(None, description="Kueue LocalQueue name.")

    @property
    def processes_per_pod(self) -> int:
        return self.devices_per_worker or self.resources.accelerators or 1

    @property
    def worker_service(self) -> str:
        """The headless Service giving the pods of a multi-pod job their DNS names."""
        return f"{self.name}-workers"

    @property
    def implied_device_target(self) -> DeviceTarget | None:
        """The device target the accelerators imply, when settings.device_target is unset."""
        if self.settings.device_target is not None or not self.resources.accelerators:
            return None
        return accelerator_target(self.resources.accelerator_resource)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials_in_urls(cls, document: Any) -> Any:
        _no_userinfo(document, "")
        return document

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if re.match(RESERVED_ENV, key):
                raise ValueError(
                    f"{key} is set by the manifest; use settings: (FT_*), storage: (AWS_*) or leave it out"
                )
            if re.search(SECRET_LIKE, key):
                raise ValueError(
                    f"{key} looks like a secret; inline secret values are refused: put it in a "
                    f"Secret (storage.credentials_secret for S3 credentials)"
                )
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if re.match(RESERVED_LABELS, key):
                raise ValueError(f"{key} is set by the manifest (queue: sets the Kueue label); use a key of your own")
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        size = sum(len(key.encode()) + len(item.encode()) for key, item in value.items())
        if size > ANNOTATIONS_MAX_BYTES:
            raise ValueError(
                f"{size} bytes together, the API server's limit is {ANNOTATIONS_MAX_BYTES}; keep large "
                f"data out of annotations"
            )
        return value

    @model_validator(mode="after")
    def _urls_parse(self) -> JobSpec:
        for where, url in (
            ("model", self.model),
            ("settings.hub_mirror", self.settings.hub_mirror),
            ("storage.endpoint", self.storage.endpoint),
        ):
            if url and re.match(r"^https?://", url):
                try:
                    _ = urlsplit(url).port  # parses the port
                except ValueError as exc:
                    raise ValueError(f"{where}: {url!r} is not a valid URL ({exc})") from None
        return self

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        if self.mode == "predict":
            missing = [f"predict.{key}" for key in ("images", "to") if not getattr(self.predict, key)]
            if missing:
                raise ValueError(f"{' and '.join(missing)}: required with mode: predict")
            if self.workers > 1:
                raise ValueError(f"workers: {self.workers} with mode: predict; prediction runs in one pod (workers: 1)")
        if self.retries * self.workers > INT32_MAX:
            raise ValueError(
                f"retries: {self.retries} x {self.workers} workers exceeds the API server's backoffLimit "
                f"limit {INT32_MAX}"
            )
        target, accelerators = self.settings.device_target, self.resources.accelerators
        resource = self.resources.accelerator_resource
        if accelerators and target is None and accelerator_target(resource) is None:
            raise ValueError(
                f"settings.device_target: required with resources.accelerator_resource {resource} (GPU or Ascend)"
            )
        if accelerators and target is DeviceTarget.CPU:
            raise ValueError(
                f"settings.device_target: CPU with resources.accelerators: {accelerators} would train on "
                f"the CPU of an accelerator node; set GPU or Ascend, or remove the accelerators"
            )
        if target in (DeviceTarget.GPU, DeviceTarget.ASCEND):
            if not accelerators:
                raise ValueError(
                    f"settings.device_target: {target.value} needs resources.accelerators (at least "
                    f"1): the pod would get no {target.value} device"
                )
            implied = accelerator_target(resource)
            if implied is not None and implied is not target:
                raise ValueError(
                    f"settings.device_target: {target.value} does not match "
                    f"resources.accelerator_resource {resource} ({implied.value} devices)"
                )
        return self


def accelerator_target(resource: str) -> DeviceTarget | None:
    """The device target of a known accelerator resource name."""
    for prefix, target in ACCELERATOR_TARGETS.items():
        if resource.startswith(prefix):
            return target
    return None


def _location(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"] if part != "[key]") or "spec"


def _message(item: ErrorDetails) -> str:
    kind, context = item["type"], item.get("ctx") or {}
    if kind == "missing":
        return "required but not set"
    if kind == "extra_forbidden":
        if item["loc"][:1] == ("settings",):
            known = sorted(JobSettings.model_fields)
            guess = difflib.get_close_matches(str(item["loc"][-1]), known, n=1)
            reserved = str(item["loc"][-1]) in RESERVED_SETTINGS
            return (
                "set by the manifest itself; use the top-level key or leave it out"
                if reserved
                else "not a job setting" + (f" (did you mean {guess[0]}?)" if guess else "")
            )
        return "not a spec key"
    if kind == "string_pattern_mismatch":
        return f"{item['input']!r} is not a valid {MEANING.get(str(context.get('pattern')), 'value')}"
    if kind == "string_too_short" and context.get("min_length") == 1:
        return "must not be empty"
    return item["msg"].removeprefix("Value error, ")


def describe(error: ValidationError) -> str:
    """Every problem as `key: message`, on one line (a value failing every type of a union is one problem)."""
    problems: list[str] = []
    for item in error.errors():
        location = _location(item)
        if location in (p.split(":")[0] for p in problems):
            continue
        message = _message(item)
        problems.append(message if location == "spec" else f"{location}: {message}")
    return "; ".join(problems)


def _child(target: Any, key: str, parent: str, override: str, last: bool) -> tuple[Any, Any]:
    """(container, key) of one step of a --set path: a mapping's key, or a list's index (`tolerations.0`)."""
    if isinstance(target, list):
        if not key.isdigit() or int(key) >= len(target):
            raise SpecError(f"--set {override!r}: {parent} is a list of {len(target)}; {key} is not an index of it")
        return target, int(key)
    if not isinstance(target, dict):
        raise SpecError(f"--set {override!r}: {parent} is not a mapping")
    if not last:
        target.setdefault(key, {})
    return target, key


def apply_overrides(document: dict, overrides: list[str]) -> dict:
    """`key.sub=value` assignments (values parsed as YAML scalars; a number steps into a list) applied to a
    spec document."""
    for override in overrides:
        path, separator, raw = override.partition("=")
        if not separator or not path:
            raise SpecError(f"--set {override!r}: use --set key=value (for example --set settings.epochs=5)")
        target: Any = document
        keys = path.split(".")
        for depth, key in enumerate(keys[:-1]):
            container, index = _child(target, key, ".".join(keys[:depth]), override, last=False)
            target = container[index]
        container, index = _child(target, keys[-1], ".".join(keys[:-1]), override, last=True)
        try:
            container[index] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            container[index] = raw
    return document


def parse_spec(document: Any, where: str) -> JobSpec:
    """A validated spec from a parsed document; every problem is reported as one SpecError."""
    if not isinstance(document, dict):
        raise SpecError(f"{where} must be a mapping of keys (name, image, model, ...)")
    try:
        return JobSpec.model_validate(document)
    except ValidationError as exc:
        raise SpecError(f"{where}: {describe(exc)}") from exc


def as_predict_job(document: dict, options: dict[str, Any], name: str | None) -> dict:
    """A training spec's document turned into its predict Job's: mode: predict, the given predict options
    (over the spec's own), named `name` or <name>-predict."""
    given = {key: value for key, value in options.items() if value is not None}
    predict = {**(document.get("predict") or {}), **given}
    return {**document, "mode": "predict", "predict": predict, "name": name or f"{document.get('name', '')}-predict"}


def load_spec(path: Path, overrides: list[str] | None = None, predict: Callable[[dict], dict] | None = None) -> JobSpec:
    """Read, override (then turn into a predict Job with `predict`) and validate a spec file."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"spec {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"spec {path} cannot be read ({exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f": line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"spec {path}{at}: not valid YAML: {problem}") from None
    if isinstance(document, dict):
        document = apply_overrides(document, overrides or [])
        if predict is not None:
            document = predict(document)
    return parse_spec(document, f"spec {path}")
