"""A local directory with the object-store semantics of S3: atomic puts, conditional creates, listings."""

from __future__ import annotations

import builtins
import os
import shutil
import time
import uuid
from pathlib import Path

from job.errors import BadInput
from job.storage.base import ObjectInfo

PART_SUFFIX = ".part"


def _staging_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{PART_SUFFIX}")


def copy_atomically(source, destination: Path) -> None:
    """Copy a file (path or readable binary stream) to a temporary sibling, fsync it, then rename it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged = _staging_name(destination)
    try:
        with open(staged, "wb") as target:
            if isinstance(source, (str, Path)):
                with open(source, "rb") as handle:
                    shutil.copyfileobj(handle, target, 1 << 20)
            else:
                shutil.copyfileobj(source, target, 1 << 20)
            target.flush()
            os.fsync(target.fileno())
        os.replace(staged, destination)
    finally:
        staged.unlink(missing_ok=True)


class LocalStore:
    """Objects are files under `root`; keys use '/' as separator."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def check_access(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"{self.root} cannot be created ({exc.strerror}); choose a writable location") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BadInput(f"{self.root} is not writable; choose a writable location")

    def put_file(self, key: str, path: Path) -> None:
        copy_atomically(path, self._path(key))

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        destination = self._path(key)
        destination.parent.mkdir(parents=True, exist_ok=True)
        staged = _staging_name(destination)
        try:
            with open(staged, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(staged, destination)  # fails if the destination exists: an atomic create
            return True
        except FileExistsError:
            return False
        finally:
            staged.unlink(missing_ok=True)

    def get_file(self, key: str, destination: Path) -> None:
        copy_atomically(self._path(key), destination)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        start = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root  # walk only below the prefix
        if not start.is_dir():
            return []
        found = []
        for directory, _, names in os.walk(start):
            for name in names:
                if name.startswith(".") and name.endswith(PART_SUFFIX):
                    continue
                path = Path(directory) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    status = path.stat()
                    found.append(
                        ObjectInfo(key, status.st_size, f"{status.st_mtime_ns:x}-{status.st_size:x}", status.st_mtime)
                    )
        return sorted(found, key=lambda info: info.key)

    def delete(self, keys: builtins.list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def abort_stale_uploads(self, prefix: str, older_than_seconds: float) -> int:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return 0
        limit = time.time() - older_than_seconds
        stale = [path for path in base.rglob(f".*{PART_SUFFIX}") if path.stat().st_mtime < limit]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)
