"""The hub model-names the job builds itself, with the hub entries that use them (for --help, --check, the
README; job/models registers a network for each)."""

from __future__ import annotations

HUB_VERSIONS = "1.3..1.10"  # the hub's mindspore/<version>/ folders these entries exist in
BUILT_IN = {
    "googlenet": ("googlenet_cifar10", "googlenet_imagenet2012"),
    "mobilenetv2": ("mobilenetv2_imagenet2012",),
}


def listing() -> list[str]:
    """One line per model-name: `name: mindspore/{1.3..1.10}/entry, ...`."""
    return [
        f"{name}: " + ", ".join(f"mindspore/{{{HUB_VERSIONS}}}/{entry}" for entry in entries)
        for name, entries in BUILT_IN.items()
    ]


def unsupported(model_name: str) -> str | None:
    """Why the job cannot build a hub model-name itself, or None when it can."""
    if model_name.lower() in BUILT_IN:
        return None
    return (
        f"no built-in network for hub model-name '{model_name}' (built in: {', '.join(sorted(BUILT_IN))}); to "
        f"run the hub's own network code, set FT_HUB_NETWORK_DIR to a local directory holding its "
        f"mindspore_hub_conf.py"
    )
