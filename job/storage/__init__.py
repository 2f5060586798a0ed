"""One storage layer for every location the job reads or writes: s3://bucket/prefix or a local path."""

from __future__ import annotations

from job.storage.base import ObjectInfo, Store, delete_stale
from job.storage.fetch import download, read_text
from job.storage.local import LocalStore
from job.storage.s3 import S3Store, StorageOptions
from job.storage.uri import is_remote, is_s3, is_url, join, local_path, parent

__all__ = [
    "LocalStore",
    "ObjectInfo",
    "S3Store",
    "Store",
    "StorageOptions",
    "delete_stale",
    "download",
    "is_remote",
    "is_s3",
    "is_url",
    "join",
    "local_path",
    "open_store",
    "parent",
    "read_text",
]


def open_store(location: str, options: StorageOptions = StorageOptions()) -> Store:
    """The store rooted at an s3:// URI or a local path (file:// accepted)."""
    if is_s3(location):
        return S3Store(location, options)
    return LocalStore(local_path(location))
