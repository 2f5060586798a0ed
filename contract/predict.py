"""Batch prediction's configuration (`python -m job predict`): FT_PREDICT_* say what to predict, and the job's own
device, batch, data pipeline and storage settings (FT_DEVICE_TARGET, FT_BATCH_SIZE, FT_S3_*, ...) apply as they
do to training. The launcher renders a predict Job from this contract."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from contract.commands import JOB_FIELDS, StorageSettings
from contract.settings import ENV_PREFIX, DeviceTarget

PREDICT_PREFIX = ENV_PREFIX + "PREDICT_"
PREDICTIONS_JSONL = "predictions.jsonl"
PREDICTIONS_CSV = "predictions.csv"
PREDICTION_SUMMARY = "summary.json"  # written last: its presence says the predictions are complete


class PredictOptions(BaseModel):
    """What to predict; each field is read from FT_PREDICT_<NAME> or given as --<name> on the command line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: str = Field(
        description="A finished run's output (a local directory or s3:// prefix holding metrics.json), whose "
        "best epoch's model and classes are used; or a .mindir file with its model.json beside it."
    )
    images: str = Field(
        description="Images to classify: a local folder or an s3:// prefix, in any layout (sub-folders are "
        "searched). When its top-level folders are the run's classes, accuracy is computed too."
    )
    to: str = Field(
        description="Where predictions.jsonl, predictions.csv and summary.json go: a local directory or an "
        "s3:// prefix that holds no predictions yet."
    )
    top_k: int = Field(5, ge=1, description="Labels (with probabilities) listed per image.")


class PredictSettings(PredictOptions, StorageSettings):
    """The options plus the job's settings that prediction uses (same variables, same meaning)."""

    device_target: DeviceTarget = JOB_FIELDS["device_target"]
    device_id: int = JOB_FIELDS["device_id"]
    batch_size: int = JOB_FIELDS["batch_size"]
    num_workers: int = JOB_FIELDS["num_workers"]
    data_cache: Path = JOB_FIELDS["data_cache"]


def env_name(field: str) -> str:
    """The environment variable that sets a field of PredictSettings."""
    prefix = PREDICT_PREFIX if field in PredictOptions.model_fields else ENV_PREFIX
    return prefix + field.upper()


def option_variables() -> list[str]:
    """FT_PREDICT_RUN, FT_PREDICT_IMAGES, ...: the variables a predict Job's manifest sets."""
    return [env_name(name) for name in PredictOptions.model_fields]
