"""The local hub cache: descriptors by name and checkpoints by sha256, verified before every use."""

from __future__ import annotations

import os
import time
from pathlib import Path

from job import storage
from job.errors import BadInput
from job.hub.descriptor import Asset
from job.storage.digest import sha256_of


class HubCache:
    """Layout: descriptors/<key>.md, assets/<sha256>/<file>, quarantine/<file>.<sha256-found>.<time>."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def descriptor_path(self, key: str) -> Path:
        return self.root / "descriptors" / f"{key}.md"

    def store_descriptor(self, key: str, text: str) -> None:
        path = self.descriptor_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)

    def asset_path(self, asset: Asset) -> Path:
        return self.root / "assets" / asset.sha256 / asset.file_name

    def quarantine(self, path: Path, asset: Asset, found_sha256: str) -> Path:
        """Move a file whose content does not match its sha256 out of the way, keeping it for inspection."""
        target = self.root / "quarantine" / f"{asset.file_name}.{found_sha256[:16]}.{time.time_ns()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        return target

    def verified_asset(self, asset: Asset) -> Path | None:
        """The cached file if present and its sha256 matches; a mismatching file is quarantined."""
        path = self.asset_path(asset)
        if not path.is_file():
            return None
        found = sha256_of(path)
        if found == asset.sha256:
            return path
        self.quarantine(path, asset, found)
        return None

    def fetch_asset(self, asset: Asset, uri: str, options: storage.StorageOptions) -> Path:
        """Download `uri`, verify its sha256, then move it into place; a mismatch is quarantined and refused."""
        incoming = storage.download(uri, self.root / "incoming" / f"{asset.sha256}.{os.getpid()}", options)
        found = sha256_of(incoming)
        if found != asset.sha256:
            kept = self.quarantine(incoming, asset, found)
            raise BadInput(
                f"sha256 mismatch for {uri}: the descriptor says {asset.sha256}, the download is "
                f"{found} (quarantined at {kept}); fix the descriptor or the mirror's file"
            )
        path = self.asset_path(asset)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(incoming, path)
        return path
