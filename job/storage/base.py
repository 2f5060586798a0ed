"""What every object store offers the job: keys relative to a root, files in and out, conditional puts."""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from collections.abc import Callable


@dataclass(frozen=True)
class ObjectInfo:
    """A listed object: key relative to the store's root, size, version tag and age."""

    key: str
    size: int
    etag: str
    modified: float  # seconds since the epoch


class Store(Protocol):
    """An S3 prefix or a local directory, with the same semantics."""

    uri: str

    def check_access(self) -> None:
        """Fail with BadInput (credentials, missing bucket or directory) or Unavailable before any work."""

    def put_file(self, key: str, path: Path) -> None:
        """Upload a local file; the object appears complete or not at all."""

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        """Create `key` unless it exists (a conditional put); False when it already existed."""

    def get_file(self, key: str, destination: Path) -> None:
        """Download to `destination` (written to a temporary name first); FileNotFoundError if absent."""

    def get_bytes(self, key: str) -> bytes:
        """The whole object; FileNotFoundError if absent."""

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with `prefix`, sorted by key."""

    def delete(self, keys: builtins.list[str]) -> None:
        """Remove objects; missing ones are ignored."""

    def abort_stale_uploads(self, prefix: str, older_than_seconds: float) -> int:
        """Discard unfinished uploads under `prefix` older than the limit; returns how many."""


def delete_stale(store: Store, prefix: str, older_than_seconds: float, keep: Callable[[str], bool]) -> int:
    """Delete the objects under `prefix` older than the limit whose key `keep` does not claim, and unfinished
    uploads under `prefix` older than the limit (a live writer's are younger); returns how many."""
    limit = time.time() - older_than_seconds
    stale = [info.key for info in store.list(prefix) if info.modified <= limit and not keep(info.key)]
    store.delete(stale)
    return len(stale) + store.abort_stale_uploads(prefix, older_than_seconds)
