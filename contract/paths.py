"""Locations with defaults the settings and the hub loader share."""

from __future__ import annotations

import os
from pathlib import Path

PUBLIC_HUB = "https://gitee.com/mindspore/hub/raw/master"


def default_cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mindspore-finetune"


def default_hub_cache() -> Path:
    return default_cache_root() / "hub"


def default_data_cache() -> Path:
    return default_cache_root() / "data"


def default_compile_cache() -> Path:
    return default_cache_root() / "compile"
