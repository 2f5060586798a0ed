"""`python -m job --check`: the configuration checked without training (used by the chart's `helm test`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from contract.settings import Settings
from job import data, hub
from job.hub.descriptor import Descriptor
from job.errors import BadInput
from job.storage import S3Store, StorageOptions, is_s3, local_path, open_store

# The directories a run writes to, by the variable that sets them.
WRITTEN_DIRECTORIES = {
    "FT_DATA_CACHE": "data_cache",
    "FT_HUB_CACHE": "hub_cache",
    "FT_COMPILE_CACHE_DIR": "compile_cache_dir",
    "FT_SCRATCH_DIR": "scratch_dir",
}


def check_directories(settings: Settings) -> None:
    """Each directory the run writes to exists (or can be made) and takes a file: a read-only or mistyped
    path is bad input, found before anything is downloaded."""
    for variable, name in WRITTEN_DIRECTORIES.items():
        path: Path | None = getattr(settings, name)
        if path is None:
            continue
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            raise BadInput(
                f"{variable}={path} is not a writable directory ({exc.strerror or exc}); point it at a writable "
                f"volume (in a pod: the cache or scratch volume)"
            ) from None


def _image_folder(variable: str, location: str, options: StorageOptions) -> data.ImageFolder:
    """A data set's class layout, from an S3 listing (nothing downloaded) or the local tree."""
    if not is_s3(location):
        return data.scan_image_folder(local_path(location), variable)
    keys = [item.key for item in S3Store(location, options).list("")]
    if not keys:
        raise BadInput(f"{variable}={location} holds no objects; upload the images or fix the location")
    return data.listed_image_folder(location, variable, keys)


def hub_descriptor(settings: Settings) -> Descriptor:
    """FT_MODEL's descriptor (nothing else is downloaded); BadInput for a model-name or zoo branch the job
    cannot build, unless FT_HUB_NETWORK_DIR brings the network."""
    from job.models import for_descriptor

    descriptor = hub.resolve(
        settings.model,
        pretrained=False,
        mirror=settings.hub_mirror,
        cache_dir=settings.hub_cache,
        offline=settings.hub_offline,
        storage_options=StorageOptions.from_settings(settings),
    ).descriptor
    if settings.hub_network_dir is None:
        for_descriptor(descriptor)
    return descriptor


def with_image_size(settings: Settings, descriptor: Descriptor | None) -> Settings:
    """The settings with FT_IMAGE_SIZE decided: when unset, the built-in network's own input size (the default
    size for a network from FT_HUB_NETWORK_DIR or one given in place of the hub's, `descriptor` None)."""
    from job.models import DEFAULT_IMAGE_SIZE, for_descriptor

    if settings.image_size is not None:
        return settings
    size = DEFAULT_IMAGE_SIZE
    if descriptor is not None and settings.hub_network_dir is None:
        size = for_descriptor(descriptor)[0].image_size
    return settings.model_copy(update={"image_size": size})


def check(settings: Settings) -> dict:
    """Settings (already valid), writable directories, output store access, the data sets' class layout and
    size (from listings: no image is downloaded or decoded) and the hub descriptor."""
    options = StorageOptions.from_settings(settings)
    check_directories(settings)
    open_store(settings.output, options).check_access()
    train = _image_folder("FT_TRAIN_DATA", settings.train_data, options)
    evaluation = _image_folder("FT_EVAL_DATA", settings.eval_data, options)
    classes = data.check_image_sets(train, evaluation, settings.num_classes, settings.batch_size)
    descriptor = hub_descriptor(settings)
    descriptor.asset(hub.CHECKPOINT_FORMAT)  # the run needs a checkpoint: refuse its absence now
    return {
        "check": "ok",
        "model": settings.model,
        "model_name": descriptor.model_name,
        "image_size": with_image_size(settings, descriptor).image_size,
        "output": settings.output,
        "classes": len(classes),
        "train_images": train.size,
        "eval_images": evaluation.size,
    }
