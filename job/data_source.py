"""Where image sets come from: a local directory read in place, or an s3:// prefix copied to a local cache.

Each set gets a fingerprint of its listing, so a resumed run can tell whether its data changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from job.errors import BadInput
from job.storage import S3Store, StorageOptions, is_s3, local_path
from job.storage.base import ObjectInfo
from job.storage.digest import sha256_of

INDEX = ".ft-index.json"
DOWNLOAD_THREADS = 16


def _fingerprint(entries: list) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def _local(location: str) -> tuple[Path, str]:
    root = local_path(location)
    if not root.is_dir():
        return root, ""  # the ImageFolder scan reports it
    return root, _fingerprint(sorted(_files(root, "")))


def _files(directory: Path | str, prefix: str) -> list[tuple[str, int]]:
    """(relative POSIX path, size) of every file under `directory` (os.scandir: one stat per file)."""
    found: list[tuple[str, int]] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                found += _files(entry.path, f"{prefix}{entry.name}/")
            elif entry.is_file():
                found.append((f"{prefix}{entry.name}", entry.stat().st_size))
    return found


def _load_index(target: Path) -> dict:
    try:
        return json.loads((target / INDEX).read_text())
    except (OSError, ValueError):
        return {}


def _is_current(target: Path, item: ObjectInfo, index: dict) -> bool:
    """The cached copy is the listed object: same ETag as when it was fetched, and the local file unchanged
    since (size and modification time, so nothing is re-read); an index of an older version, which recorded a
    sha256 instead, is checked by hashing once."""
    known: Any = index.get(item.key)  # an entry of the JSON index, or None
    path = target / item.key
    if not known or known.get("etag") != item.etag or not path.is_file():
        return False
    status = path.stat()
    if status.st_size != item.size:
        return False
    if "mtime_ns" in known:
        return known["mtime_ns"] == status.st_mtime_ns
    return "sha256" in known and sha256_of(path) == known["sha256"]


def _remote(location: str, variable: str, cache_root: Path, options: StorageOptions) -> tuple[Path, str]:
    store = S3Store(location, options)
    listing = [item for item in store.list("") if not item.key.endswith("/")]
    if not listing:
        raise BadInput(
            f"{variable}={location} holds no objects; upload the images (one prefix per class) or fix the location"
        )
    target = cache_root / hashlib.sha256(location.encode()).hexdigest()[:20]
    index = _load_index(target)
    wanted = {item.key for item in listing}
    for stale in [path for path in target.rglob("*") if path.is_file() and path.name != INDEX]:
        if stale.relative_to(target).as_posix() not in wanted:
            stale.unlink()  # removed from the bucket: never mixed into this run
    with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
        current = list(pool.map(lambda item: _is_current(target, item, index), listing))
        missing = [item for item, ok in zip(listing, current) if not ok]
        fetched = list(pool.map(lambda item: store.get_file_version(item.key, item.etag, target / item.key), missing))
    changed = [item.key for item, ok in zip(missing, fetched) if not ok]
    if changed:
        raise BadInput(
            f"{variable}={location} changed while it was being copied ({', '.join(changed[:5])}); "
            f"upload data sets before starting jobs on them, then run again"
        )
    new_index = {
        item.key: {"etag": item.etag, "size": item.size, "mtime_ns": (target / item.key).stat().st_mtime_ns}
        for item in listing
    }
    (target / INDEX).write_text(json.dumps(new_index))
    return target, _fingerprint(sorted((item.key, item.size, item.etag) for item in listing))


def materialize(location: str, variable: str, cache_root: Path, options: StorageOptions) -> tuple[Path, str]:
    """(local directory holding the set, fingerprint of its listing) for a local path or an s3:// prefix."""
    if is_s3(location):
        return _remote(location, variable, cache_root, options)
    return _local(location)
