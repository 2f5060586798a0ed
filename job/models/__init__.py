"""Network architectures shipped with the job, registered by the hub descriptors' `model-name`, each with the
model zoo branches whose layout it reproduces and its default input size."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mindspore import nn

from contract.models import unsupported
from job.errors import BadInput
from job.models.densenet import densenet121
from job.models.googlenet import googlenet
from job.models.inceptionv3 import inceptionv3
from job.models.mobilenetv2 import mobilenetv2
from job.models.mobilenetv3 import mobilenetv3_large
from job.models.resnet import DEPTHS, resnet
from job.models.resnext import resnext50
from job.models.vgg import variant, vgg16

ZOO_BRANCH = re.compile(r"/tree/(r\d+\.\d+)/")
DEFAULT_IMAGE_SIZE = 224
RESNEXT_TYPO = (
    "official/cv/resnext/mindspore_hub_conf.py of r1.3 to r1.6 cannot build it: line 19 accepts only the "
    "misspelt name 'renext50' (NotImplementedError for 'resnext50'), and line 21 calls get_network without the "
    "network name; mindspore/1.7/resnext50_imagenet2012 and later publish the same checkpoint (sha256 "
    "22857131...)"
)


@dataclass(frozen=True)
class Architecture:
    """A built-in network: `build(num_classes, include_top, zoo_branch)`, its default input size, the zoo
    source it follows, and the zoo branches refused with a reason."""

    build: Callable[..., nn.Cell]
    source: str
    image_size: int = DEFAULT_IMAGE_SIZE
    refused_branches: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, str] = field(default_factory=dict)  # a parameter name -> the branch whose layout has it
    variant: Callable[[dict], dict] | None = None  # parameter shapes -> the build arguments of the variant shown

    def checkpoint_branch(self, parameters: dict) -> str | None:
        """The zoo branch whose layout a checkpoint's parameter names show, where branches differ."""
        return next((branch for name, branch in self.layouts.items() if name in parameters), None)

    def checkpoint_arguments(self, parameters: dict) -> dict:
        """The build arguments (e.g. batch_norm, num_classes) a checkpoint's parameters show, where one
        model-name has several variants."""
        return self.variant({name: tuple(value.shape) for name, value in parameters.items()}) if self.variant else {}


ARCHITECTURES: dict[str, Architecture] = {
    "googlenet": Architecture(googlenet, "official/cv/googlenet"),
    "mobilenetv2": Architecture(
        mobilenetv2,
        "official/cv/mobilenetv2",
        # the 1.3 and 1.10 entries publish the same checkpoint (one sha256) while the zoo's top moved from
        # `head.1` (r1.3, r1.4) to `dense` (r1.5 on)
        layouts={"head.1.weight": "r1.3", "dense.weight": "r1.5"},
    ),
    **{f"resnet{depth}": Architecture(functools.partial(resnet, depth), "official/cv/resnet") for depth in DEPTHS},
    "densenet121": Architecture(densenet121, "official/cv/densenet"),
    # one model-name for vgg16_imagenet2012, vgg16_bn_imagenet2012 (batch norm) and vgg16_cifar10 (batch norm,
    # 10 classes): the checkpoint's own parameters pick the variant
    "vgg16": Architecture(vgg16, "official/cv/vgg16", variant=variant),
    "inceptionv3": Architecture(inceptionv3, "official/cv/inceptionv3", image_size=299),
    # mobilenetv3_imagenet2012 up to 1.9 and mobilenetv3large_imagenet2012 (research/cv/mobilenetv3_large,
    # whose definition has the same layout)
    "mobilenetv3_large": Architecture(mobilenetv3_large, "official/cv/mobilenetv3"),
    "resnext50": Architecture(
        resnext50, "official/cv/resnext", refused_branches=dict.fromkeys(("r1.3", "r1.4", "r1.5", "r1.6"), RESNEXT_TYPO)
    ),
}


def zoo_branch(repo_link: str, fields: dict) -> str | None:
    """The model zoo branch a hub entry was trained from: its repo-link's `/tree/rX.Y/`, else its
    mindspore-version."""
    found = ZOO_BRANCH.search(repo_link or "")
    if found:
        return found.group(1)
    version = str(fields.get("mindspore-version") or "").strip()
    return f"r{version}" if re.fullmatch(r"\d+\.\d+", version) else None


def architecture(model_name: str, branch: str | None = None) -> Architecture:
    """The registered architecture for a hub `model-name` (case-insensitive) and zoo branch; BadInput, before
    anything is downloaded, for one the job does not ship or a branch whose entry cannot load."""
    problem = unsupported(model_name)
    if problem:
        raise BadInput(problem)
    found = ARCHITECTURES[model_name.lower()]
    if branch in found.refused_branches:
        raise BadInput(f"hub model-name '{model_name}' of {branch}: {found.refused_branches[branch]}")
    return found


def create_network(model_name: str, *args, zoo_branch: str | None = None, **kwargs) -> nn.Cell:
    """Build the registered architecture for a hub `model-name` as the hub conf's create_network does
    (`include_top`, `num_classes`), in the layout of `zoo_branch`."""
    factory = architecture(model_name, zoo_branch).build
    try:
        return factory(*args, zoo_branch=zoo_branch, **kwargs)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"cannot build '{model_name}' with these arguments: {exc}") from exc
