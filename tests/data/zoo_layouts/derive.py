"""Derive the model zoo's parameter layouts (name -> shape) by running the zoo's own network definitions under
the installed MindSpore, for the layout tests. Not run by the tests: its output is stored next to it.

    python tests/data/zoo_layouts/derive.py ZOO_CHECKOUT BRANCH [NAME ...]

ZOO_CHECKOUT is a git clone of the MindSpore model zoo (mindspore-ai/models); BRANCH the hub entries' branch
(e.g. r1.10); NAMEs pick recipes (default: all). Each architecture's `src/` folder is read from that branch with
`git archive`, imported as the package `src` (as its mindspore_hub_conf.py imports it), with stand-ins for
the modules that only read the zoo's command line and YAML settings, and its network built with and without
the top as the hub conf builds it (where the hub conf has no top-less form, as the zoo's fine-tune scripts
remove the top).
"""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
NUM_CLASSES = 1000


@dataclass(frozen=True)
class Recipe:
    """Where an architecture lives in the zoo and how its hub conf builds it."""

    folder: str  # e.g. official/cv/resnet
    module: str  # the module under the folder holding the network, e.g. src.resnet
    full: Callable  # (module, num_classes) -> the full network
    backbone: Callable | None = None  # module -> the network without its top
    top: tuple[str, ...] = ()  # else: the top's parameter-name prefixes, removed from the full layout
    stubs: dict[str, dict] = field(default_factory=dict)  # module name -> attributes of its stand-in
    num_classes: int = NUM_CLASSES
    files: tuple[str, ...] = ()  # other files of the folder, copied next to src/ (e.g. the hub conf's YAML)


def _resnet(depth: int) -> Recipe:
    return Recipe(
        "official/cv/resnet",
        "src.resnet",
        lambda zoo, num_classes: getattr(zoo, f"resnet{depth}")(class_num=num_classes),
        top=("end_point.",),
        # src/model_utils/config.py parses the zoo's command line and YAML; resnet.py reads two settings from it
        stubs={
            "src.model_utils.config": {"config": types.SimpleNamespace(net_name=f"resnet{depth}", optimizer="Momentum")}
        },
        num_classes=1001,
    )


def _vgg16_settings(zoo, name: str, **changes):
    """The `args` the hub conf gives vgg16(): a YAML file of the folder, with image_size parsed as train.py
    parses it ("224,224" -> [224, 224]; the hub conf passes the string, which r1.9's vgg.py cannot size its
    classifier from), and `changes`."""
    settings = next(yaml.safe_load_all((Path(zoo.__file__).parents[1] / name).read_text()))
    settings["image_size"] = [int(size) for size in settings["image_size"].split(",")]
    return types.SimpleNamespace(**{**settings, **changes})


def _vgg16(settings: str, num_classes: int, **changes) -> Recipe:
    return Recipe(
        "official/cv/vgg16",
        "src.vgg",
        lambda zoo, classes: zoo.vgg16(num_classes=classes, args=_vgg16_settings(zoo, settings, **changes)),
        # include_top=False: Vgg builds its classifier all the same, and skips it
        backbone=lambda zoo: zoo.vgg16(
            num_classes=num_classes, args=_vgg16_settings(zoo, settings, **changes), include_top=False
        ),
        num_classes=num_classes,
        files=(settings,),
    )


RECIPES: dict[str, Recipe] = {
    "mobilenetv2": Recipe(
        "official/cv/mobilenetv2",
        "src.mobilenetV2",
        lambda zoo, num_classes: zoo.mobilenet_v2(
            (backbone := zoo.MobileNetV2Backbone()), zoo.MobileNetV2Head(backbone.out_channels, num_classes)
        ),
        backbone=lambda zoo: zoo.MobileNetV2Backbone(),
        num_classes=1000,
    ),
    **{f"resnet{depth}": _resnet(depth) for depth in (18, 34, 50, 101, 152)},
    "densenet121": Recipe(
        "official/cv/densenet",
        "src.network.densenet",
        lambda zoo, num_classes: zoo.DenseNet121(num_classes),
        backbone=lambda zoo: zoo.DenseNet121(NUM_CLASSES, include_top=False),
    ),
    # the hub conf takes cifar10_config.yaml (batch norm) for 10 classes, imagenet2012_config.yaml (none) for 1000
    "vgg16": _vgg16("imagenet2012_config.yaml", 1000),
    "vgg16_cifar10": _vgg16("cifar10_config.yaml", 10),
    # vgg16_bn_imagenet2012, which no hub conf builds: the ImageNet settings with batch norm (train.py --batch_norm)
    "vgg16_bn": _vgg16("imagenet2012_config.yaml", 1000, batch_norm=True),
    # the hub conf's InceptionV3() has is_training=True: `aux_logits` in the full network (and the checkpoints);
    # the backbone is the network without the top and without them
    "inceptionv3": Recipe(
        "official/cv/inceptionv3",
        "src.inception_v3",
        lambda zoo, num_classes: zoo.InceptionV3(num_classes=num_classes),
        backbone=lambda zoo: zoo.InceptionV3(NUM_CLASSES, is_training=False, include_top=False),
    ),
    "mobilenetv3_large": Recipe(
        "official/cv/mobilenetv3",
        "src.mobilenetV3",
        lambda zoo, num_classes: zoo.mobilenet_v3_large(num_classes=num_classes),
        backbone=lambda zoo: zoo.mobilenet_v3_large(include_top=False),
    ),
    "resnext50": Recipe(
        "official/cv/resnext",
        "src.image_classification",
        lambda zoo, num_classes: zoo.get_network("resnext50", num_classes=num_classes),
        backbone=lambda zoo: zoo.get_network("resnext50", include_top=False),
    ),
}


def _git(checkout: Path, *arguments: str) -> bytes:
    return subprocess.run(["git", "-C", str(checkout), *arguments], capture_output=True, check=True).stdout


def _import(checkout: Path, branch: str, recipe: Recipe):
    """The recipe's module, imported from a fresh copy of its folder's `src/` on `branch`."""
    for name in [name for name in sys.modules if name == "src" or name.startswith("src.")]:
        del sys.modules[name]
    root = Path(tempfile.mkdtemp())
    paths = [f"{recipe.folder}/{path}" for path in ("src", *recipe.files)]
    with tarfile.open(fileobj=io.BytesIO(_git(checkout, "archive", branch, *paths))) as archive:
        archive.extractall(root, filter="data")
    sys.path.insert(0, str(root / recipe.folder))
    try:
        for name, attributes in recipe.stubs.items():
            stand_in = types.ModuleType(name)
            stand_in.__dict__.update(attributes)
            sys.modules[name] = stand_in
        return importlib.import_module(recipe.module)
    finally:
        sys.path.remove(str(root / recipe.folder))


def _layout(network) -> dict[str, list[int]]:
    return {parameter.name: list(parameter.shape) for parameter in network.get_parameters()}


def main(checkout: Path, branch: str, names: list[str]) -> None:
    commit = _git(checkout, "rev-parse", branch).decode().strip()
    import mindspore

    for name in names or list(RECIPES):
        recipe = RECIPES[name]
        zoo = _import(checkout, branch, recipe)
        full = _layout(recipe.full(zoo, recipe.num_classes))
        if recipe.backbone:
            backbone = _layout(recipe.backbone(zoo))
        else:
            backbone = {key: shape for key, shape in full.items() if not key.startswith(recipe.top)}
        document = {
            "source": f"mindspore-ai/models {branch} ({commit}) {recipe.folder}/{recipe.module.replace('.', '/')}.py",
            "mindspore": mindspore.__version__,
            "num_classes": recipe.num_classes,
            "full": full,
            "backbone": backbone,
        }
        (HERE / f"{name}-{branch}.json").write_text(json.dumps(document, indent=1) + "\n")
        print(f"{name}: {len(full)} parameters with the top, {len(backbone)} without")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
