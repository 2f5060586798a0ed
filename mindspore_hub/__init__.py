"""`import mindspore_hub as mshub`: the upstream package's `load` for code written against it, backed by this
project's loader (job.hub): descriptors from FT_HUB_MIRROR (a base URL, a local directory or an s3:// prefix;
default the public hub), sha256-verified checkpoints cached in FT_HUB_CACHE, FT_HUB_OFFLINE and
FT_HUB_NETWORK_DIR as for the job, and the built-in networks registered by model-name.

    network = mshub.load("mindspore/1.10/mobilenetv2_imagenet2012", include_top=False)

Unlike the upstream package it never clones network code, checks every checkpoint's sha256 before use, and
reuses a verified cache without network access (`force_reload=True` reads the descriptor again).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from contract.settings import Settings, env_name

HUB_SETTINGS = ("hub_mirror", "hub_cache", "hub_offline", "hub_network_dir")


def hub_options(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The loader's mirror, cache, offline and network_dir from the job's FT_HUB_* variables (their defaults
    when unset)."""
    from job.errors import BadInput

    options = {}
    for name in HUB_SETTINGS:
        field = Settings.model_fields[name]
        annotation: Any = field.annotation
        raw = environ.get(env_name(name), "")
        try:
            value = TypeAdapter(annotation).validate_python(raw) if raw else None
        except ValidationError as exc:
            raise BadInput(f"{env_name(name)}={raw!r}: {exc.errors()[0]['msg']}") from None
        options[name] = value if value is not None else field.get_default(call_default_factory=True)
    return {
        "mirror": options["hub_mirror"],
        "cache_dir": options["hub_cache"],
        "offline": options["hub_offline"],
        "network_dir": options["hub_network_dir"],
    }


def load(name: str, *args: Any, pretrained: bool = True, force_reload: bool = False, **kwargs: Any):
    """The hub entry's network, built like the upstream `mindspore_hub.load(name, *args, pretrained=True,
    **kwargs)` (`include_top`, `num_classes`, ...), with its verified checkpoint loaded when `pretrained`."""
    from job import hub

    return hub.load(name, *args, pretrained=pretrained, force_reload=force_reload, **hub_options(), **kwargs)
