"""Reading files by URI: local paths, file://, http(s):// and s3:// (S3-compatible servers through boto3)."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from job.errors import BadInput, Unavailable

HTTP_TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1 << 20


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https", "s3")


def join(base: str, *parts: str) -> str:
    """Join path segments onto a local path or a URI."""
    if is_remote(base) or base.startswith("file://"):
        return "/".join([base.rstrip("/"), *(part.strip("/") for part in parts)])
    return str(Path(base).joinpath(*parts))


def local_path(uri: str) -> Path:
    """The local path a plain path or file:// URI names."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri).expanduser()


def _s3_client():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(s3={"addressing_style": "path"},
                                            retries={"mode": "standard", "max_attempts": 5},
                                            connect_timeout=10, read_timeout=HTTP_TIMEOUT_SECONDS))


def _copy_s3(uri: str, target) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urlparse(uri)
    try:
        body = _s3_client().get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
        shutil.copyfileobj(body, target, CHUNK_BYTES)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            raise FileNotFoundError(uri) from exc
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise BadInput(f"access to {uri} was refused ({code}); check AWS_ACCESS_KEY_ID, "
                           f"AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL") from exc
        raise Unavailable(f"reading {uri} failed ({code}); the store may be down, retry later") from exc
    except BotoCoreError as exc:
        raise Unavailable(f"reading {uri} failed ({exc}); check AWS_ENDPOINT_URL or retry later") from exc


def _copy_http(uri: str, target) -> None:
    try:
        with urllib.request.urlopen(uri, timeout=HTTP_TIMEOUT_SECONDS) as response:
            shutil.copyfileobj(response, target, CHUNK_BYTES)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise FileNotFoundError(uri) from exc
        if exc.code in (401, 403):
            raise BadInput(f"access to {uri} was refused (HTTP {exc.code})") from exc
        raise Unavailable(f"reading {uri} failed (HTTP {exc.code}); retry later") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise Unavailable(f"cannot reach {uri} ({getattr(exc, 'reason', exc)}); check the address or "
                          f"retry later") from exc


def _copy(uri: str, target) -> None:
    scheme = urlparse(uri).scheme
    if scheme == "s3":
        _copy_s3(uri, target)
    elif scheme in ("http", "https"):
        _copy_http(uri, target)
    else:
        with open(local_path(uri), "rb") as source:
            shutil.copyfileobj(source, target, CHUNK_BYTES)


def download(uri: str, destination: Path) -> Path:
    """Copy `uri` to `destination` through a temporary file in the same directory, renamed when complete.

    Raises FileNotFoundError when the object does not exist.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as target:
            _copy(uri, target)
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


def read_text(uri: str) -> str:
    """The whole object at `uri` as UTF-8 text. Raises FileNotFoundError when it does not exist."""
    if not is_remote(uri):
        return local_path(uri).read_text(encoding="utf-8")
    with tempfile.TemporaryFile() as buffer:
        _copy(uri, buffer)
        buffer.seek(0)
        return buffer.read().decode("utf-8")
