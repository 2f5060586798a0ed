"""Publishing a checkpoint as an entry of a private hub or mirror (descriptor + asset + sha256)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from job.storage.digest import sha256_of
from job.hub.descriptor import Asset, render_descriptor


def publish(hub_root: Path, model_id: str, model_name: str, checkpoint: Path, **fields: str) -> Path:
    """Copy `checkpoint` next to mshub_res/assets/<model_id>.md and write that descriptor (asset link relative
    to it); returns the descriptor path. The checkpoint is written before the descriptor that names it."""
    descriptor = hub_root / "mshub_res" / "assets" / f"{model_id}.md"
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    asset_name = f"{Path(model_id).name}.ckpt"
    shutil.copyfile(checkpoint, descriptor.parent / asset_name)
    asset = Asset("ckpt", asset_name, sha256_of(descriptor.parent / asset_name))
    staged = descriptor.with_name(f".{descriptor.name}.{os.getpid()}.part")
    staged.write_text(render_descriptor(model_name, [asset], **fields), encoding="utf-8")
    os.replace(staged, descriptor)
    return descriptor
