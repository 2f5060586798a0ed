"""Locations: plain local paths, file://, http(s):// and s3://bucket/prefix URIs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from job.errors import BadInput


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https", "s3")


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme == "s3"


def is_url(uri: str) -> bool:
    """A URI with a scheme (not a plain local path)."""
    return is_remote(uri) or uri.startswith("file://")


def join(base: str, *parts: str) -> str:
    """Join path segments onto a local path or a URI."""
    if is_url(base):
        return "/".join([base.rstrip("/"), *(part.strip("/") for part in parts)])
    return str(local_path(base).joinpath(*parts))


def parent(uri: str) -> str:
    """The location holding `uri`."""
    if is_url(uri):
        return uri.rstrip("/").rsplit("/", 1)[0]
    return str(Path(uri).parent)


def local_path(uri: str) -> Path:
    """The local path a plain path or file:// URI names; other URIs (gs://, ftp://, ...) are refused."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and uri[len(parsed.scheme) :].startswith("://"):
        raise BadInput(f"'{uri}' is not a location this job can use; use s3://bucket/prefix, a local path or file://")
    return Path(uri).expanduser()


def split_s3(uri: str) -> tuple[str, str]:
    """(bucket, key prefix without slashes at either end) of an s3:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise BadInput(f"'{uri}' is not an S3 location; use s3://bucket/prefix")
    return parsed.netloc, parsed.path.strip("/")
