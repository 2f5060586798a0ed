"""A MindSpore Hub loader with the API shape of `mindspore_hub.load`, plus mirrors, a verified cache and
offline use. Networks are built from the architectures shipped with the job, never from downloaded code."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from job import storage
from contract.paths import PUBLIC_HUB, default_hub_cache
from contract.settings import ID_PART as ID_PART_PATTERN
from job.errors import BadInput
from job.hub.cache import HubCache
from job.hub.descriptor import Asset, Descriptor, parse_descriptor

__all__ = ["HubEntry", "load", "load_checkpoint_into", "resolve"]

ID_PART = re.compile(rf"^{ID_PART_PATTERN}$")
CHECKPOINT_FORMAT = "ckpt"


@dataclass(frozen=True)
class HubEntry:
    """A resolved hub entry: its descriptor, and the verified local checkpoint when one was asked for."""

    name: str
    descriptor: Descriptor
    checkpoint: Path | None


def _descriptor_location(name: str, mirror: str) -> tuple[str, str]:
    """(descriptor URI or path, cache key) for a hub id, a descriptor URL or a local descriptor path."""
    if name.endswith(".md"):
        if storage.is_url(name):
            return name, "url-" + hashlib.sha256(name.encode()).hexdigest()[:24]
        return name, ""
    parts = name.split("/")
    if len(parts) not in (3, 4) or not all(ID_PART.match(part) for part in parts):
        raise BadInput(
            f"'{name}' is not a hub model id; use owner/version/name such as "
            f"mindspore/1.6/googlenet_cifar10, a URL ending in .md, or a local .md path"
        )
    return storage.join(mirror, "mshub_res", "assets", name + ".md"), "id-" + "/".join(parts)


def _read_descriptor(
    name: str,
    location: str,
    key: str,
    cache: HubCache,
    offline: bool,
    force_reload: bool,
    options: storage.StorageOptions,
) -> str:
    """The descriptor text from `location`, or from the cache (under `key`) when it holds the descriptor."""
    if not key:  # a local descriptor file: read as is, nothing to cache
        try:
            return storage.local_path(location).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BadInput(f"hub descriptor {location} does not exist; check FT_MODEL") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"hub descriptor {location} cannot be read ({exc}); check FT_MODEL") from exc
    cached = cache.descriptor_path(key)
    if cached.is_file() and not force_reload:
        return cached.read_text(encoding="utf-8")
    if offline:
        raise BadInput(
            f"hub descriptor for '{name}' is not in the cache {cache.root} and offline mode is on; "
            f"turn FT_HUB_OFFLINE off once, or copy the descriptor into the cache"
        )
    try:
        text = storage.read_text(location, options)
    except FileNotFoundError:
        raise BadInput(
            f"unknown hub model '{name}': {location} does not exist; check FT_MODEL and FT_HUB_MIRROR"
        ) from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"hub descriptor {location} is not UTF-8 text; check FT_MODEL") from exc
    return text


def _asset_uri(asset: Asset, descriptor_location: str) -> str:
    """Absolute links are used as they are; relative links resolve against the descriptor's directory."""
    if urlparse(asset.link).scheme in ("http", "https", "s3", "file"):
        return asset.link
    if storage.is_url(descriptor_location):
        return storage.parent(descriptor_location) + "/" + asset.link
    return str(storage.local_path(descriptor_location).parent / asset.link)


def _checkpoint(
    descriptor: Descriptor, location: str, cache: HubCache, offline: bool, options: storage.StorageOptions
) -> Path:
    asset = descriptor.asset(CHECKPOINT_FORMAT)
    cached = cache.verified_asset(asset)
    if cached is not None:
        return cached
    if offline:
        raise BadInput(
            f"checkpoint {asset.file_name} (sha256 {asset.sha256}) is not in the cache {cache.root} "
            f"and offline mode is on; turn FT_HUB_OFFLINE off once to download it"
        )
    uri = _asset_uri(asset, location)
    try:
        return cache.fetch_asset(asset, uri, options)
    except FileNotFoundError:
        raise BadInput(
            f"checkpoint {uri} listed by the hub descriptor does not exist; fix the descriptor's "
            f"asset-link or the mirror"
        ) from None


def resolve(
    name: str,
    *,
    pretrained: bool = True,
    mirror: str = PUBLIC_HUB,
    cache_dir: Path | str | None = None,
    offline: bool = False,
    force_reload: bool = False,
    storage_options: storage.StorageOptions = storage.StorageOptions(),
    before_download: Callable[[Descriptor], object] | None = None,
) -> HubEntry:
    """Find a hub entry's descriptor and, if `pretrained`, its verified checkpoint (downloaded if needed);
    `before_download` sees the descriptor first and may refuse it by raising."""
    cache = HubCache(Path(cache_dir) if cache_dir else default_hub_cache())
    location, key = _descriptor_location(name, mirror)
    text = _read_descriptor(name, location, key, cache, offline, force_reload, storage_options)
    descriptor = parse_descriptor(text, location)
    if before_download is not None:
        before_download(descriptor)
    checkpoint = _checkpoint(descriptor, location, cache, offline, storage_options) if pretrained else None
    if key and (force_reload or not cache.descriptor_path(key).is_file()):
        cache.store_descriptor(key, text)
    return HubEntry(name, descriptor, checkpoint)


def _external_network(network_dir: Path, model_name: str, *args, **kwargs):
    conf = Path(network_dir) / "mindspore_hub_conf.py"
    if not conf.is_file():
        raise BadInput(
            f"{conf} does not exist; FT_HUB_NETWORK_DIR must be a local directory holding the "
            f"hub's mindspore_hub_conf.py"
        )
    spec = importlib.util.spec_from_file_location("mindspore_hub_conf", conf)
    assert spec is not None and spec.loader is not None  # a .py path always gets a source file loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "create_network"):
        raise BadInput(f"{conf} has no create_network(name, *args, **kwargs) function")
    return module.create_network(model_name, *args, **kwargs)


def _memory_available() -> int | None:
    """The kernel's MemAvailable in bytes: free memory and the page cache it can reclaim."""
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    found = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None


def read_checkpoint(checkpoint: Path) -> dict:
    """A checkpoint's parameters by name; BadInput when it cannot be read.

    MindSpore refuses a .ckpt larger than the memory it sees as available, the free pages alone (MemFree: a few
    hundred MB once the page cache has filled, less than VGG-16's 537 MB checkpoints); while reading, it is
    given MemAvailable, which counts the reclaimable cache too."""
    import mindspore as ms
    from mindspore.train import serialization

    counted = getattr(serialization, "_get_available_memory", None)
    if counted is not None:
        serialization._get_available_memory = _memory_available
    try:
        return ms.load_checkpoint(str(checkpoint))
    except (ValueError, RuntimeError, OSError) as exc:
        raise BadInput(
            f"checkpoint {checkpoint} cannot be read ({exc}); it is damaged or not a MindSpore checkpoint"
        ) from exc
    finally:
        if counted is not None:
            serialization._get_available_memory = counted


def load_checkpoint_into(network, checkpoint: Path, parameters: dict | None = None) -> None:
    """Load a checkpoint (or its `parameters`, already read) into `network`; every network parameter must be in
    it with the same shape."""
    import mindspore as ms

    if parameters is None:
        parameters = read_checkpoint(checkpoint)
    try:
        missing, _ = ms.load_param_into_net(network, parameters, strict_load=True)
    except (ValueError, RuntimeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(
            f"checkpoint {checkpoint} does not fit the network ({first_line}); check num_classes and include_top"
        ) from exc
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise BadInput(
            f"checkpoint {checkpoint} lacks {len(missing)} parameters of the network ({shown}); it "
            f"was saved from another architecture"
        )


def _built_in(descriptor: Descriptor) -> None:
    """BadInput, before the checkpoint is downloaded, for a model-name or zoo branch the job cannot build."""
    from job.models import for_descriptor

    for_descriptor(descriptor)


def load(
    name: str,
    *args,
    pretrained: bool = True,
    mirror: str = PUBLIC_HUB,
    cache_dir: Path | str | None = None,
    offline: bool = False,
    force_reload: bool = False,
    network_dir: Path | str | None = None,
    storage_options: storage.StorageOptions = storage.StorageOptions(),
    layout_from: dict | None = None,
    **kwargs,
):
    """Build the hub entry's network (`*args`/`**kwargs` such as include_top, num_classes go to its constructor)
    and, if `pretrained`, load its sha256-verified checkpoint into it. The descriptor is read first: a
    model-name the job cannot build is refused before the checkpoint is downloaded. Not pretrained, the
    parameters `layout_from` (a fine-tuned checkpoint's) show the layout or variant to build."""

    entry = resolve(
        name,
        pretrained=pretrained,
        mirror=mirror,
        cache_dir=cache_dir,
        offline=offline,
        force_reload=force_reload,
        storage_options=storage_options,
        before_download=_built_in if network_dir is None else None,  # refused before the checkpoint is fetched
    )
    model_name = entry.descriptor.model_name
    parameters = read_checkpoint(entry.checkpoint) if entry.checkpoint is not None else None
    if network_dir is not None:
        network = _external_network(Path(network_dir), model_name, *args, **kwargs)
    else:
        from job.models import create_network, for_descriptor

        architecture, branch = for_descriptor(entry.descriptor)
        # a checkpoint's own parameters show a layout or variant its entry's branch does not say: several
        # branches' entries share one MobileNetV2 file, VGG-16's batch norm and class count differ by entry
        shapes_from = parameters if parameters is not None else layout_from
        shown = architecture.checkpoint_arguments(shapes_from) if shapes_from is not None else {}
        network = create_network(model_name, *args, **{"zoo_branch": branch, **shown, **kwargs})
    if entry.checkpoint is not None:
        load_checkpoint_into(network, entry.checkpoint, parameters)
    return network
