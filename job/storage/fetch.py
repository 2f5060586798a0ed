"""Reading single files by URI (hub descriptors and checkpoints): local, file://, http(s):// and s3://."""

from __future__ import annotations


import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from job.errors import BadInput, Unavailable
from job.storage.local import copy_atomically
from job.storage.s3 import S3Store, StorageOptions
from job.storage.uri import is_remote, is_s3, local_path, parent

HTTP_TIMEOUT_SECONDS = 60


def _http_error(uri: str, exc: Exception) -> Exception:
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code == 404:
            return FileNotFoundError(uri)
        if exc.code in (401, 403):
            return BadInput(f"access to {uri} was refused (HTTP {exc.code})")
        return Unavailable(f"reading {uri} failed (HTTP {exc.code}); retry later")
    return Unavailable(f"cannot reach {uri} ({getattr(exc, 'reason', exc)}); check the address or retry later")


def download(uri: str, destination: Path, options: StorageOptions = StorageOptions()) -> Path:
    """Copy `uri` to `destination`, written to a temporary sibling and renamed when complete.

    Raises FileNotFoundError when the object does not exist.
    """
    scheme = urlparse(uri).scheme
    if is_s3(uri):
        S3Store(parent(uri), options).get_file(uri.rsplit("/", 1)[1], destination)
    elif scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri, timeout=HTTP_TIMEOUT_SECONDS) as response:
                copy_atomically(response, destination)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise _http_error(uri, exc) from exc
    else:
        copy_atomically(local_path(uri), destination)
    return destination


def read_text(uri: str, options: StorageOptions = StorageOptions()) -> str:
    """The whole file at `uri` as UTF-8 text. Raises FileNotFoundError when it does not exist."""
    if not is_remote(uri):
        return local_path(uri).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "object"
        download(uri, target, options)
        return target.read_text(encoding="utf-8")
