"""Checkpoints committed atomically to a store, found again after a crash, and pruned.

Layout under the output store:
    checkpoints/attempts/<attempt>/epoch-NNNNNN/<file>   data files, under a prefix unique to the upload attempt
    checkpoints/manifests/epoch-NNNNNN.json              the commit: epoch, files, sizes, sha256, run state

Data files are uploaded first; the manifest is written last with a conditional put, so an epoch is committed
exactly when its manifest exists, and a second writer of the same epoch loses cleanly. "Latest" is the newest
epoch whose manifest exists and whose files verify against the recorded sha256.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

from job.errors import Conflict
from job.storage.digest import sha256_of
from job.storage import Store, delete_stale

MANIFESTS = "checkpoints/manifests/"
ATTEMPTS = "checkpoints/attempts/"
FORMAT_VERSION = 1


def new_attempt_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def best_epoch(rated: list[tuple[int, float | None]]) -> int | None:
    """The epoch with the highest eval top-1 (the earliest on a tie) among (epoch, top1) pairs; None if none
    was evaluated. Retention and the run's `best_checkpoint` both use this rule, so the best is never pruned."""
    scored = [(top1, -epoch) for epoch, top1 in rated if top1 is not None]
    return -max(scored)[1] if scored else None


def manifest_key(epoch: int) -> str:
    return f"{MANIFESTS}epoch-{epoch:06d}.json"


@dataclass(frozen=True)
class Manifest:
    """A committed epoch: which attempt wrote it, its files, and the run's state at that point."""

    epoch: int
    attempt: str
    files: tuple[dict, ...]
    state: dict

    @property
    def eval_top1(self) -> float | None:
        return self.state.get("eval_top1")

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT_VERSION,
                "epoch": self.epoch,
                "attempt": self.attempt,
                "files": list(self.files),
                "state": self.state,
                "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=1,
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        document = json.loads(data)
        files = tuple(document["files"])
        for entry in files:
            if not {"name", "key", "size", "sha256"} <= set(entry):
                raise ValueError("file entry lacks name, key, size or sha256")
        return cls(int(document["epoch"]), str(document["attempt"]), files, dict(document.get("state", {})))


@dataclass(frozen=True)
class Restored:
    """A verified checkpoint downloaded for resuming."""

    manifest: Manifest
    files: dict[str, Path]


class CheckpointLog:
    """The committed checkpoints of one output store, written by one upload attempt."""

    def __init__(self, store: Store, attempt: str) -> None:
        self.store = store
        self.attempt = attempt

    def commit(self, epoch: int, files: dict[str, Path], state: dict) -> None:
        """Upload `files` (name -> local path) under this attempt's prefix, then commit them with the manifest.

        Raises Conflict, after removing its own uploads, if another attempt committed this epoch first.
        """
        entries: list[dict] = []
        for name, path in sorted(files.items()):
            key = f"{ATTEMPTS}{self.attempt}/epoch-{epoch:06d}/{name}"
            entry = {"name": name, "key": key, "size": path.stat().st_size, "sha256": sha256_of(path)}
            self.store.put_file(key, path)
            entries.append(entry)
        manifest = Manifest(epoch, self.attempt, tuple(entries), state)
        if self.store.put_bytes_if_absent(manifest_key(epoch), manifest.to_bytes()):
            return
        existing = self.read(manifest_key(epoch))
        if existing is not None and existing.attempt == self.attempt:
            return  # our own earlier try went through although its answer was lost
        self.store.delete([entry["key"] for entry in entries])
        writer = existing.attempt if existing else "another attempt"
        raise Conflict(
            f"epoch {epoch} in {self.store.uri} was already committed by {writer}: another run writes "
            f"the same FT_OUTPUT; this one stops so the two do not mix (run one job per output)"
        )

    def read(self, key: str) -> Manifest | None:
        """The manifest at `key`, or None if it is missing or unreadable."""
        try:
            return Manifest.from_bytes(self.store.get_bytes(key))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def manifests(self) -> list[Manifest]:
        """Every readable committed manifest, oldest epoch first."""
        found = [self.read(info.key) for info in self.store.list(MANIFESTS) if info.key.endswith(".json")]
        return sorted((manifest for manifest in found if manifest is not None), key=lambda m: m.epoch)

    def latest_verified(self, scratch: Path, on_skip: Callable[[int, str], None]) -> Restored | None:
        """Download the newest committed epoch whose files verify; older ones are tried when one does not."""
        listed = self._sizes()
        for manifest in reversed(self.manifests()):
            target = scratch / f"restore-epoch-{manifest.epoch:06d}"
            problem = self.download(manifest, target, listed)
            if problem is None:
                return Restored(manifest, {entry["name"]: target / entry["name"] for entry in manifest.files})
            shutil.rmtree(target, ignore_errors=True)
            on_skip(manifest.epoch, problem)
        return None

    def _sizes(self) -> dict[str, int]:
        return {info.key: info.size for info in self.store.list(ATTEMPTS)}

    def download(self, manifest: Manifest, target: Path, listed: dict[str, int] | None = None) -> str | None:
        """Download a manifest's files into `target` and verify them; returns what is wrong, or None."""
        listed = self._sizes() if listed is None else listed
        for entry in manifest.files:
            if listed.get(entry["key"]) != entry["size"]:
                return f"{entry['key']} is missing or has the wrong size"
            local = target / entry["name"]
            self.store.get_file(entry["key"], local)
            found = sha256_of(local)
            if found != entry["sha256"]:
                return f"{entry['key']} has sha256 {found}, the manifest says {entry['sha256']}"
        return None

    def retain(self, keep: int) -> list[int]:
        """Delete committed epochs except the newest `keep` and the best (by eval top-1); returns the epochs
        deleted. Each manifest goes before its files, so no manifest ever names a missing file."""
        if keep <= 0:
            return []
        manifests = self.manifests()
        best = best_epoch([(manifest.epoch, manifest.eval_top1) for manifest in manifests])
        kept = {manifest.epoch for manifest in manifests[-keep:]} | {best}
        removed = []
        for manifest in manifests:
            if manifest.epoch not in kept:
                self.store.delete([manifest_key(manifest.epoch)])
                self.store.delete([entry["key"] for entry in manifest.files])
                removed.append(manifest.epoch)
        return removed

    def collect_garbage(self, min_age_seconds: float) -> int:
        """Delete uploads no manifest names (attempts that died before committing) and stale multipart uploads,
        when older than `min_age_seconds`; this attempt's own files are never touched. Returns the count."""
        referenced = {entry["key"] for manifest in self.manifests() for entry in manifest.files}
        own = f"{ATTEMPTS}{self.attempt}/"
        return delete_stale(
            self.store, ATTEMPTS, min_age_seconds, keep=lambda key: key in referenced or key.startswith(own)
        )
