"""Every image of a set decodes, checked before training so a bad file stops the job at the start, not halfway.

Images that decoded are recorded (relative path, size, modification time) in the data cache, so a resumed or
repeated run decodes only what is new or changed since: its start-up cost grows with what changed, not with
the data set.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from job.data import ImageFolder, listing
from job.errors import BadInput

RECORDS = "readable"  # under FT_DATA_CACHE: one JSON record per image set root


def _unreadable(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        return f"{path} ({type(exc).__name__})"
    return None


def _identity(path: Path) -> list[int] | None:
    """What says a file is unchanged: [size, modification time in ns]; None when it cannot be read."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return [status.st_size, status.st_mtime_ns]


def _record_path(cache: Path, root: Path) -> Path:
    return cache / RECORDS / f"{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:20]}.json"


def _load(record: Path) -> dict[str, list[int]]:
    try:
        loaded = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _save(record: Path, verified: dict[str, list[int]]) -> None:
    """Written whole and renamed into place: a pod killed meanwhile leaves the previous record."""
    record.parent.mkdir(parents=True, exist_ok=True)
    partial = record.with_name(f".{record.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(verified), encoding="utf-8")
    os.replace(partial, record)


def unreadable_images(folder: ImageFolder, workers: int, cache: Path | None = None) -> tuple[int, dict[Path, str]]:
    """Decode every image not recorded as readable in `cache` (in parallel) and record those that decode; (how
    many were decoded, the ones that do not decode with their problem). Records are keyed by the path relative
    to the folder's root."""
    names = {path: path.relative_to(folder.root).as_posix() for paths in folder.files.values() for path in paths}
    paths = list(names)
    record = _record_path(cache, folder.root) if cache is not None else None
    known = _load(record) if record is not None else {}
    identities = {path: _identity(path) for path in paths}
    pending = [path for path in paths if identities[path] is None or known.get(names[path]) != identities[path]]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = dict(zip(pending, pool.map(_unreadable, pending)))
    if record is not None and pending:
        readable = {
            names[path]: identity
            for path, identity in identities.items()
            if identity is not None and problems.get(path) is None
        }
        _save(record, readable)
    return len(pending), {path: problem for path, problem in problems.items() if problem}


def check_images_readable(folder: ImageFolder, variable: str, workers: int, cache: Path | None = None) -> int:
    """How many images of `folder` were decoded (see unreadable_images); BadInput listing those that do not."""
    decoded, bad = unreadable_images(folder, workers, cache)
    if bad:
        raise BadInput(
            f"{variable} has {len(bad)} unreadable images: {listing(list(bad.values()))}; replace or delete them"
        )
    return decoded
