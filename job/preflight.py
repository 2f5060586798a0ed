"""`python -m job --check`: the configuration checked without training (used by the chart's `helm test`)."""

from __future__ import annotations

from job import hub
from contract.settings import Settings
from job.errors import BadInput
from job.storage import S3Store, StorageOptions, is_s3, local_path, open_store


def _check_data(variable: str, location: str, settings: Settings) -> None:
    if is_s3(location):
        if not S3Store(location, StorageOptions.from_settings(settings)).list(""):
            raise BadInput(f"{variable}={location} holds no objects; upload the images or fix the location")
    elif not local_path(location).is_dir():
        raise BadInput(f"{variable}={location} is not a directory")


def check(settings: Settings) -> dict:
    """Settings (already valid), output store access, data locations and the hub descriptor."""
    options = StorageOptions.from_settings(settings)
    open_store(settings.output, options).check_access()
    _check_data("FT_TRAIN_DATA", settings.train_data, settings)
    _check_data("FT_EVAL_DATA", settings.eval_data, settings)
    entry = hub.resolve(
        settings.model,
        pretrained=False,
        mirror=settings.hub_mirror,
        cache_dir=settings.hub_cache,
        offline=settings.hub_offline,
        storage_options=options,
    )
    entry.descriptor.asset(hub.CHECKPOINT_FORMAT)  # the run needs a checkpoint: refuse its absence now
    return {
        "check": "ok",
        "model": settings.model,
        "model_name": entry.descriptor.model_name,
        "output": settings.output,
    }
