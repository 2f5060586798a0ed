"""What the job's other commands (predict, publish) share with training: the storage settings, read from the same
FT_* variables with the same meaning and defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from contract.settings import Checksums, RetryMode, Settings

JOB_FIELDS: dict[str, Any] = dict(Settings.model_fields)  # the job's own fields (FieldInfo), reused as they are


class StorageSettings(BaseModel):
    """How stores are reached: S3 retries, timeouts, checksums and credentials, and the local scratch space."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scratch_dir: Path | None = JOB_FIELDS["scratch_dir"]
    s3_retry_mode: RetryMode = JOB_FIELDS["s3_retry_mode"]
    s3_max_attempts: int = JOB_FIELDS["s3_max_attempts"]
    s3_connect_timeout: float = JOB_FIELDS["s3_connect_timeout"]
    s3_read_timeout: float = JOB_FIELDS["s3_read_timeout"]
    s3_checksums: Checksums = JOB_FIELDS["s3_checksums"]
    s3_credentials_dir: Path | None = JOB_FIELDS["s3_credentials_dir"]
