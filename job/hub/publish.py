"""Writing an entry of a private hub or mirror (a local directory or an s3:// prefix): the checkpoint under a
name holding its sha256, any files beside it, then the descriptor naming it, created by a conditional put so an
existing id is never overwritten."""

from __future__ import annotations

from pathlib import Path

from job.errors import BadInput
from job.hub.descriptor import Asset, render_descriptor
from job.storage import LocalStore, Store
from job.storage.digest import sha256_of

ASSETS = "mshub_res/assets"


def descriptor_key(model_id: str) -> str:
    """Where a hub id's descriptor lives below the hub root (as the loader looks for it)."""
    return f"{ASSETS}/{model_id}.md"


def refuse_existing(store: Store, model_id: str) -> None:
    """BadInput when the hub already has an entry `model_id`."""
    key = descriptor_key(model_id)
    if any(info.key == key for info in store.list(key)):
        raise BadInput(
            f"hub {store.uri} already has an entry {model_id} ({key}); published entries are never overwritten: "
            f"choose another id (a new version, owner/<version>/name)"
        )


def publish_entry(
    store: Store,
    model_id: str,
    model_name: str,
    checkpoint: Path,
    fields: dict[str, object],
    body: str = "",
    beside: dict[str, Path] | None = None,
) -> str:
    """Write entry `model_id` (descriptor front matter `fields`, markdown `body`, `beside`: file name -> local
    file next to the descriptor); returns the descriptor's location. The descriptor is written last, so a
    reader never sees it before what it names."""
    refuse_existing(store, model_id)
    key = descriptor_key(model_id)
    folder, name = key.rsplit("/", 1)[0], model_id.rsplit("/", 1)[-1]
    digest = sha256_of(checkpoint)
    asset = Asset("ckpt", f"{name}-{digest[:16]}.ckpt", digest)  # content-addressed: racing writers cannot mix
    store.put_file(f"{folder}/{asset.link}", checkpoint)
    for file_name, path in (beside or {}).items():
        store.put_file(f"{folder}/{file_name}", path)
    text = render_descriptor(model_name, [asset], **fields) + body
    if not store.put_bytes_if_absent(key, text.encode("utf-8")):
        refuse_existing(store, model_id)  # another writer published the id meanwhile
    return f"{store.uri}/{key}"


def publish(hub_root: Path, model_id: str, model_name: str, checkpoint: Path, **fields: object) -> Path:
    """Publish a checkpoint as entry `model_id` of the local hub at `hub_root`; returns the descriptor path."""
    publish_entry(LocalStore(hub_root), model_id, model_name, checkpoint, fields)
    return hub_root / descriptor_key(model_id)
