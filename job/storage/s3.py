"""S3-compatible object storage through boto3: path-style addressing, retries, timeouts, clear errors.

Endpoint and region come from the standard variables (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION), which boto3 reads
as they are. Credentials come from files in a directory (a mounted Secret, so that no process environment
holds them) or, without one, from boto3's own sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ~/.aws).
"""

from __future__ import annotations

import builtins
import functools
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from collections.abc import Iterator

from contract.pod import ACCESS_KEY_FILE, SECRET_KEY_FILE
from job.errors import BadInput, Unavailable
from job.storage.base import ObjectInfo
from job.storage.local import copy_atomically
from job.storage.uri import split_s3

if TYPE_CHECKING:
    from contract.settings import Settings
    from contract.commands import StorageSettings

AUTH_ERRORS = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "Forbidden",
    "403",
    "401",
}
MISSING_ERRORS = {"NoSuchKey", "404", "NotFound"}
CONDITION_ERRORS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
DELETE_BATCH = 1000
# Checkpoints up to this size go in one PUT (fewer requests; measured faster than 8 MB parts for a 45 MB
# checkpoint); larger files in parallel parts of MULTIPART_CHUNK_BYTES.
MULTIPART_THRESHOLD_BYTES = 128 << 20
MULTIPART_CHUNK_BYTES = 32 << 20


@dataclass(frozen=True)
class StorageOptions:
    """How the job talks to S3-compatible servers."""

    retry_mode: str = "standard"
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    checksums: str = "when_supported"  # "when_required" for servers that reject botocore's default CRC32
    max_concurrency: int = 8
    credentials_dir: Path | None = None  # files ACCESS_KEY_FILE and SECRET_KEY_FILE; None: boto3's own sources

    @classmethod
    def from_settings(cls, settings: Settings | StorageSettings) -> StorageOptions:
        return cls(
            retry_mode=settings.s3_retry_mode.value,
            max_attempts=settings.s3_max_attempts,
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            checksums=settings.s3_checksums.value,
            credentials_dir=settings.s3_credentials_dir,
        )


def read_credentials(directory: Path) -> dict[str, str]:
    """The access key pair stored as files (one value each, trailing newline ignored), as boto3 arguments."""
    values = {}
    for argument, name in (("aws_access_key_id", ACCESS_KEY_FILE), ("aws_secret_access_key", SECRET_KEY_FILE)):
        path = directory / name
        try:
            values[argument] = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise BadInput(
                f"S3 credentials file {path} is missing; mount the Secret with the keys "
                f"{ACCESS_KEY_FILE} and {SECRET_KEY_FILE} there (FT_S3_CREDENTIALS_DIR)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(
                f"S3 credentials file {path} cannot be read ({exc.__class__.__name__}); check the "
                f"mounted Secret and its file mode"
            ) from None
        if not values[argument]:
            raise BadInput(f"S3 credentials file {path} is empty; fill the Secret's key")
    return values


@functools.lru_cache(maxsize=8)
def s3_client(options: StorageOptions):
    """A client shared by threads (boto3 clients are thread-safe); one per set of options."""
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        retries={"mode": options.retry_mode, "max_attempts": options.max_attempts},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        request_checksum_calculation=options.checksums,
        response_checksum_validation=options.checksums,
        max_pool_connections=max(10, options.max_concurrency * 2),
    )
    credentials = read_credentials(options.credentials_dir) if options.credentials_dir else {}
    return boto3.session.Session(**credentials).client("s3", config=config)


def _error_code(exc) -> str:
    return str(
        exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def translate(exc: Exception, location: str) -> Exception:
    """The job's error (or FileNotFoundError) for a boto3/botocore failure at `location`."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return BadInput(
            f"no usable S3 credentials for {location}; name a Secret in storage.credentials_secret "
            f"(mounted as files, FT_S3_CREDENTIALS_DIR) or set AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code == "NoSuchBucket":
            return BadInput(f"bucket of {location} does not exist; create it or fix the location")
        if code in MISSING_ERRORS:
            return FileNotFoundError(location)
        if code in AUTH_ERRORS:
            return BadInput(
                f"access to {location} was refused ({code}); check AWS_ACCESS_KEY_ID, "
                f"AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL"
            )
        return Unavailable(
            f"S3 request for {location} failed ({code}: "
            f"{exc.response.get('Error', {}).get('Message', '')}); retry later"
        )
    if isinstance(exc, BotoCoreError):
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "the default AWS endpoint")
        return Unavailable(
            f"cannot reach S3 at {endpoint} for {location} ({exc}); check AWS_ENDPOINT_URL or retry later"
        )
    return exc


@contextmanager
def translated(location: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError
    from boto3.exceptions import S3UploadFailedError

    try:
        yield
    except S3UploadFailedError as exc:  # upload_file wraps the ClientError
        cause = exc.__context__ if isinstance(exc.__context__, (ClientError, BotoCoreError)) else None
        if cause is not None:
            raise translate(cause, location) from exc
        raise Unavailable(f"upload to {location} failed ({exc}); retry later") from exc
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, location) from exc


class S3Store:
    """Objects under s3://bucket/prefix."""

    def __init__(self, uri: str, options: StorageOptions = StorageOptions()) -> None:
        self.uri = uri.rstrip("/")
        self.bucket, self.prefix = split_s3(uri)
        self.options = options
        self.client = s3_client(options)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _transfer(self):
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD_BYTES,
            multipart_chunksize=MULTIPART_CHUNK_BYTES,
            max_concurrency=self.options.max_concurrency,
            use_threads=True,
        )

    def check_access(self) -> None:
        try:
            with translated(self.uri):
                self.client.head_bucket(Bucket=self.bucket)
                self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1)
        except FileNotFoundError:  # head_bucket answers a bare 404 for a missing bucket
            raise BadInput(
                f"bucket '{self.bucket}' of {self.uri} does not exist; create it or fix the location"
            ) from None

    def put_file(self, key: str, path: Path) -> None:
        with translated(self._where(key)):
            self.client.upload_file(str(path), self.bucket, self._key(key), Config=self._transfer())

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            with translated(self._where(key)):
                try:
                    self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
                except ClientError as exc:
                    if _error_code(exc) in CONDITION_ERRORS:
                        return False
                    raise
        except FileNotFoundError:
            raise Unavailable(f"conditional put of {self._where(key)} failed; retry later") from None
        return True

    def get_file(self, key: str, destination: Path) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        staged = destination.with_name(f".{destination.name}.{os.getpid()}.part")
        try:
            with translated(self._where(key)):
                self.client.download_file(self.bucket, self._key(key), str(staged), Config=self._transfer())
            os.replace(staged, destination)
        finally:
            staged.unlink(missing_ok=True)

    def get_file_version(self, key: str, etag: str, destination: Path) -> bool:
        """Download `key` only if it still has `etag`; False (nothing written) if it changed since listed."""
        from botocore.exceptions import ClientError

        with translated(self._where(key)):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(key), IfMatch=f'"{etag}"')["Body"]
            except ClientError as exc:
                if _error_code(exc) in CONDITION_ERRORS:
                    return False
                raise
            copy_atomically(body, destination)
        return True

    def get_bytes(self, key: str) -> bytes:
        with translated(self._where(key)):
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        found = []
        base = len(self._key(""))
        with translated(self._where(prefix)):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                for item in page.get("Contents", []):
                    found.append(
                        ObjectInfo(
                            item["Key"][base:], item["Size"], item["ETag"].strip('"'), item["LastModified"].timestamp()
                        )
                    )
        return sorted(found, key=lambda info: info.key)

    def delete(self, keys: builtins.list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": self._key(key)} for key in keys[start : start + DELETE_BATCH]]
            with translated(self.uri):
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def abort_stale_uploads(self, prefix: str, older_than_seconds: float) -> int:
        limit = time.time() - older_than_seconds
        aborted = 0
        with translated(self._where(prefix)):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() < limit:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        return aborted
