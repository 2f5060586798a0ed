"""The job's whole configuration: one typed model read from `FT_*` environment variables.

This model is the contract between the manifests (launcher, Helm chart) and the job: the launcher validates
`settings:` with it and the chart's values schema is generated from it.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.paths import PUBLIC_HUB, default_compile_cache, default_data_cache, default_hub_cache
from contract.results import parse_bar

ENV_PREFIX = "FT_"
ID_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # one part of a hub id
HUB_ENTRY_ID = rf"^{ID_PART}/{ID_PART}/{ID_PART}$"  # owner/version/name: the id a published entry gets
HTTP_URL = r"^https?://[^/@\s]+(/\S*)?$"  # http:// or https://, a host, no credentials in it


class DeviceTarget(str, Enum):
    CPU = "CPU"
    GPU = "GPU"
    ASCEND = "Ascend"


class RetryMode(str, Enum):
    STANDARD = "standard"
    ADAPTIVE = "adaptive"


class Checksums(str, Enum):
    WHEN_SUPPORTED = "when_supported"
    WHEN_REQUIRED = "when_required"


class EarlyStopMetric(str, Enum):
    TOP1 = "top1"
    LOSS = "loss"


class AmpLevel(str, Enum):
    O0 = "O0"
    O1 = "O1"
    O2 = "O2"
    O3 = "O3"


class Settings(BaseSettings):
    """Fine-tuning job settings; each field is read from FT_<NAME IN UPPER CASE>."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        use_enum_values=False,
        validate_default=True,
        allow_inf_nan=False,
    )

    model: str = Field(
        description="Hub model: an id such as mindspore/1.6/googlenet_cifar10, a descriptor URL "
        "ending in .md (https://, s3://, file://) or a local descriptor path."
    )
    hub_mirror: str = Field(
        PUBLIC_HUB,
        description="Hub root holding mshub_res/assets/<id>.md: a base URL, a local directory or an s3:// prefix.",
    )
    hub_cache: Path = Field(
        default_factory=default_hub_cache,
        description="Directory caching descriptors and checkpoints (sha256-verified).",
    )
    hub_offline: bool = Field(
        False, description="Never use the network for the hub; fail if the cache lacks something."
    )
    hub_network_dir: Path | None = Field(
        None,
        description="Opt-in: a local directory whose "
        "mindspore_hub_conf.py builds networks the job does not "
        "ship. Runs that code; unset means built-in networks only.",
    )
    train_data: str = Field(description="Training images in ImageFolder layout (one folder per class).")
    eval_data: str = Field(
        description="Evaluation images in ImageFolder layout; classes must exist in the training set."
    )
    output: str = Field(
        description="Where checkpoints, metrics, plots and the MINDIR export are written: "
        "s3://bucket/prefix or a local directory. A run resumes from what it holds."
    )
    data_cache: Path = Field(
        default_factory=default_data_cache,
        description="Local copy of s3:// data sets (files already present and verified are not downloaded again).",
    )
    compile_cache: bool = Field(
        True,
        description="Keep MindSpore's compiled graphs in FT_COMPILE_CACHE_DIR and carry them with each committed "
        "checkpoint, so a repeated or resumed run with the same graphs skips most of the compilation.",
    )
    compile_cache_dir: Path = Field(
        default_factory=default_compile_cache,
        description="Directory of the compiled-graph cache, one subdirectory per graph configuration.",
    )
    scratch_dir: Path | None = Field(
        None,
        description="Local directory for checkpoints waiting to be committed "
        "and cached backbone features; unset means the system "
        "temporary directory.",
    )
    num_classes: int | None = Field(
        None,
        ge=2,
        description="Number of classes; unset means the number of class "
        "folders in FT_TRAIN_DATA, set means it must match.",
    )
    epochs: int = Field(60, ge=1, description="Training epochs.")
    batch_size: int = Field(
        32,
        ge=1,
        description="Images per training step across all devices (the global batch); "
        "each device takes FT_BATCH_SIZE / (FT_WORKERS x "
        "FT_DEVICES_PER_WORKER).",
    )
    image_size: int | None = Field(
        None,
        ge=16,
        le=4096,
        description="Square input size in pixels (when unset: the network's own, 299 for InceptionV3 and 224 for "
        "the others and for networks from FT_HUB_NETWORK_DIR).",
    )
    lr_init: float = Field(0.0, ge=0, description="Learning rate at step 0 (start of the linear warmup).")
    lr_max: float = Field(0.01, gt=0, description="Learning rate at the end of the warmup (cosine peak).")
    lr_end: float = Field(0.0, ge=0, description="Learning rate the cosine decay ends at.")
    warmup_epochs: float = Field(
        2.0,
        ge=0,
        description="Epochs of linear warmup from FT_LR_INIT to FT_LR_MAX (when unset: 2, or FT_EPOCHS if smaller).",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum of the SGD optimizer.")
    weight_decay: float = Field(4e-5, ge=0, description="Weight decay; never applied to BatchNorm or bias.")
    freeze_backbone: bool = Field(
        False, description="Train only the new head; backbone weights and BatchNorm statistics stay as loaded."
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing factor of the loss.")
    augment: bool = Field(
        True, description="Random resized crop (and flip) for training; off means the eval transform."
    )
    hflip: bool = Field(True, description="Random horizontal flip when augmenting (turn off for text, digits).")
    crop_min_scale: float = Field(
        0.08, gt=0, le=1, description="Smallest image area fraction of the random resized crop."
    )
    device_target: DeviceTarget = Field(DeviceTarget.CPU, description="CPU, GPU or Ascend.")
    device_id: int = Field(0, ge=0, description="Device index on GPU or Ascend.")
    workers: int = Field(
        1,
        ge=1,
        description="Pods training together (data parallel through msrun); above 1, the pods of an Indexed Job.",
    )
    devices_per_worker: int = Field(
        1, ge=1, description="Training processes per pod, one per device (on CPU, processes sharing the pod's cores)."
    )
    worker_service: str | None = Field(
        None,
        description="Headless Service that is the pods' subdomain; pod 0 "
        "is reached as <job>-0.<service> (needed when "
        "FT_WORKERS > 1).",
    )
    master_port: int = Field(8118, ge=1024, le=65535, description="Port of msrun's scheduler on pod 0.")
    master_wait_seconds: float = Field(
        600, gt=0, description="How long to wait for pod 0's name to resolve and for all workers to join."
    )
    amp_level: AmpLevel = Field(
        AmpLevel.O0, description="Mixed precision: O0 (fp32), O1, O2 (with dynamic loss scaling) or O3."
    )
    seed: int = Field(1, ge=0, description="Seed for weights of the new head, shuffling and augmentation.")
    num_workers: int = Field(
        0,
        ge=0,
        description=(
            "Data pipeline workers per training process; 0 means the CPUs this pod may use (its CPU limit and "
            "affinity, not the node's core count) shared among its training processes."
        ),
    )
    log_every: int = Field(10, ge=1, description="Training steps between progress lines.")
    eval_every: int = Field(
        1, ge=0, description="Evaluate every N epochs (used to pick `best`); 0 evaluates only after the last epoch."
    )
    early_stop_patience: int = Field(
        0,
        ge=0,
        description="Stop after this many evaluations in a row without improvement of FT_EARLY_STOP_METRIC "
        "(counted in evaluations, so FT_EVAL_EVERY spaces them); 0 never stops early. The learning-rate "
        "schedule stays the one of FT_EPOCHS.",
    )
    early_stop_metric: EarlyStopMetric = Field(
        EarlyStopMetric.TOP1,
        description="What early stopping watches: top1 (eval top-1, higher is better) or loss "
        "(eval cross-entropy, lower is better).",
    )
    early_stop_min_delta: float = Field(
        0.0, ge=0, description="The least change of FT_EARLY_STOP_METRIC that counts as an improvement."
    )
    tensorboard: bool = Field(
        True,
        description="Write TensorBoard event files (per progress window and epoch: loss, accuracy, lr, images/s, "
        "eval top-1/top-5/loss; the confusion matrix as an image) to results/<attempt>/tensorboard/.",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        pattern=HTTP_URL,
        description="MLflow tracking server (http:// or https://) to log params, per-epoch metrics and the result "
        "files to; a server that is down is retried in the background and never stops the training.",
    )
    mlflow_experiment: str = Field("mindspore-finetune", min_length=1, description="MLflow experiment name.")
    mlflow_run_name: str | None = Field(
        None, description="MLflow run name; unset: the last part of FT_OUTPUT. A resumed run logs to the same run."
    )
    mlflow_flush_timeout_seconds: float = Field(
        60, ge=0, description="At the end, how long to wait for MLflow logging still queued (a server that is down)."
    )
    export_mindir: bool = Field(True, description="Export the fine-tuned network with softmax as MINDIR.")
    keep_checkpoints: int = Field(
        3, ge=0, description="Committed epochs to keep (the newest N, plus the best); 0 keeps all."
    )
    gc_min_age_seconds: float = Field(
        900,
        ge=0,
        description="Uncommitted checkpoint and result uploads older "
        "than this are garbage (a live writer's are younger).",
    )
    term_grace_seconds: float = Field(
        25, ge=0, description="On SIGTERM, how long to let the in-flight commit finish before abandoning it."
    )
    flush_timeout_seconds: float = Field(
        900,
        gt=0,
        description="At the end, how long to wait for pending commits (storage outage) before failing retryably.",
    )
    publish_to: str | None = Field(
        None,
        description="A hub root (local directory or s3:// prefix) to publish the finished run to as FT_PUBLISH_ID "
        "(descriptor, checkpoint, model card); unset: not published.",
    )
    publish_id: str | None = Field(
        None,
        pattern=HUB_ENTRY_ID,
        description="The published entry's id, owner/version/name; an existing id is never overwritten.",
    )
    publish_require: str = Field(
        "",
        description="Comma-separated bars the run must meet to be published, as --require takes them "
        "(e.g. top1>=0.9); empty: always published.",
    )
    s3_retry_mode: RetryMode = Field(RetryMode.STANDARD, description="botocore retry mode: standard or adaptive.")
    s3_max_attempts: int = Field(5, ge=1, description="botocore attempts per S3 request.")
    s3_connect_timeout: float = Field(10, gt=0, description="Seconds to connect to the S3 endpoint.")
    s3_read_timeout: float = Field(60, gt=0, description="Seconds to wait for S3 to answer.")
    s3_checksums: Checksums = Field(
        Checksums.WHEN_SUPPORTED,
        description="when_supported, or when_required for servers that reject botocore's default checksums.",
    )
    s3_credentials_dir: Path | None = Field(
        None,
        description="Directory holding the S3 credentials as the files "
        "access-key-id and secret-access-key (a mounted "
        "Secret); unset: boto3's own sources (AWS_* "
        "variables, ~/.aws).",
    )

    @field_validator("mlflow_tracking_uri", mode="before")
    @classmethod
    def _http_url(cls, value):
        """The pattern's meaning in words (pydantic's own message would quote the regex; the pattern stays for the
        schemas generated from this model)."""
        if isinstance(value, str) and not re.match(HTTP_URL, value):
            raise ValueError(
                "not an http:// or https:// URL of a tracking server (credentials are refused in it); for example "
                "http://mlflow.example:5000"
            )
        return value

    @field_validator(
        "hub_network_dir",
        "scratch_dir",
        "hub_cache",
        "data_cache",
        "compile_cache_dir",
        "s3_credentials_dir",
        mode="before",
    )
    @classmethod
    def _no_empty_path(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("empty; unset the variable for the default or name a directory")
        return value

    @model_validator(mode="after")
    def _check_schedule(self) -> Settings:
        problems = []
        if "warmup_epochs" not in self.model_fields_set:
            self.warmup_epochs = min(self.warmup_epochs, float(self.epochs))
        if self.lr_init > self.lr_max:
            problems.append(f"FT_LR_INIT ({self.lr_init}) must not exceed FT_LR_MAX ({self.lr_max})")
        if self.lr_end > self.lr_max:
            problems.append(f"FT_LR_END ({self.lr_end}) must not exceed FT_LR_MAX ({self.lr_max})")
        if self.warmup_epochs > self.epochs:
            problems.append(f"FT_WARMUP_EPOCHS ({self.warmup_epochs}) must not exceed FT_EPOCHS ({self.epochs})")
        if self.batch_size % self.world_size:
            problems.append(
                f"FT_BATCH_SIZE ({self.batch_size}) must be a multiple of the {self.world_size} "
                f"training processes (FT_WORKERS x FT_DEVICES_PER_WORKER)"
            )
        if self.early_stop_patience and not self.eval_every:
            problems.append(
                f"FT_EARLY_STOP_PATIENCE={self.early_stop_patience} counts evaluations, but FT_EVAL_EVERY=0 "
                f"evaluates only after the last epoch; set FT_EVAL_EVERY to 1 (or N)"
            )
        if self.workers > 1 and not self.worker_service:
            problems.append(
                f"FT_WORKERS={self.workers} needs FT_WORKER_SERVICE, the headless Service naming the "
                f"pods (the launcher and the chart set it)"
            )
        if self.publish_to and not self.publish_id:
            problems.append("FT_PUBLISH_TO needs FT_PUBLISH_ID, the entry's owner/version/name")
        for bar in self.publish_bars:
            try:
                parse_bar(bar)
            except ValueError as exc:
                problems.append(f"FT_PUBLISH_REQUIRE: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def publish_bars(self) -> list[str]:
        """FT_PUBLISH_REQUIRE's bars."""
        return [part.strip() for part in self.publish_require.split(",") if part.strip()]

    @property
    def world_size(self) -> int:
        """Training processes in all pods together."""
        return self.workers * self.devices_per_worker


def env_name(field: str) -> str:
    """The environment variable that sets a field."""
    return ENV_PREFIX + field.upper()


def known_variables() -> list[str]:
    """Every variable the job reads, in declaration order."""
    return [env_name(name) for name in Settings.model_fields]


def required_variables() -> list[str]:
    """Variables without a default: every manifest must set them."""
    return [env_name(name) for name, field in Settings.model_fields.items() if field.is_required()]
