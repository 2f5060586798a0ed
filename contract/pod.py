"""The container's side of the manifest: its name, command, user, volumes, the variables the manifest manages
and the grace period; the launcher and the chart (through charts/finetune/templates/_contract.tpl, generated
from this module) render the same."""

from __future__ import annotations

import math

from contract import exits
from contract.settings import ENV_PREFIX, Settings

APP_NAME = "mindspore-finetune"  # app.kubernetes.io/name of every object
CONTAINER = "finetune"
COMMAND = ["python", "-m", "job"]
PREDICT_COMMAND = "predict"  # the container's argument in a mode: predict Job
USER_ID = 10001  # the image's non-root user (Dockerfile)
BAD_INPUT_EXIT_CODE = exits.BAD_INPUT  # the podFailurePolicy fails the Job at once on it

SCRATCH = "/scratch"
CACHE = "/cache"
SHM = "/dev/shm"
# The pod's writable volumes by name (emptyDirs; the root filesystem is read-only).
VOLUME_MOUNTS = {"scratch": SCRATCH, "cache": CACHE, "shm": SHM}
CREDENTIALS = "/var/run/secrets/finetune/s3"  # the S3 credentials Secret, as files
ACCESS_KEY_FILE = "access-key-id"
SECRET_KEY_FILE = "secret-access-key"
CREDENTIALS_MODE = 0o440  # owner root, group the pod's fsGroup: readable by the job's user only

# Variables every manifest sets from the container layout, in order.
LAYOUT_ENVIRONMENT = {
    "FT_HUB_CACHE": f"{CACHE}/hub",
    "FT_DATA_CACHE": f"{CACHE}/data",
    "FT_COMPILE_CACHE_DIR": f"{CACHE}/compile",
    "FT_SCRATCH_DIR": SCRATCH,
    "HOME": f"{SCRATCH}/home",
    "MPLCONFIGDIR": f"{SCRATCH}/matplotlib",
}
# Settings the manifest sets itself (from top-level spec keys or the container layout), never under `settings:`.
RESERVED_SETTINGS = (
    "model",
    "train_data",
    "eval_data",
    "output",
    "hub_cache",
    "data_cache",
    "compile_cache_dir",
    "scratch_dir",
    "workers",
    "devices_per_worker",
    "worker_service",
    "s3_credentials_dir",
)
# `env:` may not set these: the manifest manages them (FT_* through settings:, AWS_* through storage:).
RESERVED_PREFIXES = (ENV_PREFIX, "AWS_")
RESERVED_NAMES = ("HOME", "MPLCONFIGDIR", "JOB_NAME")

# Seconds the pod gets beyond the job's FT_TERM_GRACE_SECONDS: the in-flight commit is abandoned at
# term_grace_seconds, then the job writes its last lines and msrun stops its workers.
# A failed pod's status carries the tail of its log (the job's last `error:` line), read by `launcher status`.
TERMINATION_MESSAGE_POLICY = "FallbackToLogsOnError"
GRACE_MARGIN_SECONDS = 15


def termination_grace_seconds(term_grace_seconds: float | None) -> int:
    """The pod's terminationGracePeriodSeconds for the job's FT_TERM_GRACE_SECONDS (unset: its default)."""
    if term_grace_seconds is None:
        term_grace_seconds = Settings.model_fields["term_grace_seconds"].default
    return math.ceil(term_grace_seconds) + GRACE_MARGIN_SECONDS


def pod_security_context() -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "fsGroup": USER_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_failure_policy() -> dict:
    """Bad configuration or input fails the Job at once (a retry cannot help); preemption, eviction and node
    drain are not the job's fault and do not count against backoffLimit."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [BAD_INPUT_EXIT_CODE]},
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }
