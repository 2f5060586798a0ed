"""The hub model-names the job builds itself, with the hub entries that use them (for --help, --check, the
README; job/models registers a network for each)."""

from __future__ import annotations

HUB_VERSIONS = "1.3..1.10"  # the hub's mindspore/<version>/ folders these entries exist in
BUILT_IN = {
    "googlenet": ("googlenet_cifar10", "googlenet_imagenet2012"),
    "mobilenetv2": ("mobilenetv2_imagenet2012",),
    "resnet18": ("resnet18_cifar10", "resnet18_imagenet2012"),
    "resnet34": ("resnet34_imagenet2012",),
    "resnet50": ("resnet50_cifar10", "resnet50_imagenet2012"),
    "resnet101": ("resnet101_imagenet2012",),
    "resnet152": ("resnet152_imagenet2012",),
    "densenet121": ("densenet121_imagenet2012",),
    "vgg16": ("vgg16_cifar10", "vgg16_imagenet2012", "vgg16_bn_imagenet2012"),
    "inceptionv3": ("inceptionv3_imagenet2012",),
    "mobilenetv3_large": ("mobilenetv3_imagenet2012", "mobilenetv3large_imagenet2012"),
    "resnext50": ("resnext50_imagenet2012",),
}


# entries that load from fewer of those versions: the others are refused (job/models says why)
ENTRY_VERSIONS = {"mobilenetv3_imagenet2012": "1.3..1.9", "resnext50_imagenet2012": "1.7..1.10"}
# model-names of hub entries that the zoo's own hub conf cannot build, with the entry to use instead
REFUSED_NAMES = {
    "mobilenetv3": (
        "mindspore/1.10/mobilenetv3_imagenet2012 names its network 'mobilenetv3', which the zoo's "
        "official/cv/mobilenetv3/mindspore_hub_conf.py (the same on r1.3 to r1.10) cannot build: its create_network "
        "takes 'mobilenetv3_large' or 'mobilenetv3_small' and raises NotImplementedError for any other name; use "
        "mindspore/1.9/mobilenetv3_imagenet2012 (the same checkpoint, sha256 f67f803c..., model-name "
        "'mobilenetv3_large') or mindspore/1.10/mobilenetv3large_imagenet2012"
    ),
}


def listing() -> list[str]:
    """One line per model-name: `name: mindspore/{1.3..1.10}/entry, ...`."""
    return [
        f"{name}: " + ", ".join(f"mindspore/{{{ENTRY_VERSIONS.get(entry, HUB_VERSIONS)}}}/{entry}" for entry in entries)
        for name, entries in BUILT_IN.items()
    ]


def unsupported(model_name: str) -> str | None:
    """Why the job cannot build a hub model-name itself, or None when it can."""
    if model_name.lower() in BUILT_IN:
        return None
    if model_name.lower() in REFUSED_NAMES:
        return f"hub model-name '{model_name}' cannot be built: {REFUSED_NAMES[model_name.lower()]}"
    return (
        f"no built-in network for hub model-name '{model_name}' (built in: {', '.join(sorted(BUILT_IN))}); to "
        f"run the hub's own network code, set FT_HUB_NETWORK_DIR to a local directory holding its "
        f"mindspore_hub_conf.py"
    )
