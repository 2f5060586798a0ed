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
from job.hub.descriptor import Descriptor
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


def layout_branch(branches: dict[str, str]) -> Callable[[dict], dict]:
    """For entries of several zoo branches that share one checkpoint file: the branch whose layout has a
    parameter name the checkpoint holds (`branches`: a parameter name -> that branch)."""

    def shown(shapes: dict) -> dict:
        found = next((branch for name, branch in branches.items() if name in shapes), None)
        return {"zoo_branch": found} if found else {}

    return shown


@dataclass(frozen=True)
class Architecture:
    """A built-in network: `build(num_classes, include_top, zoo_branch)`, its default input size, the zoo
    source it follows, the zoo branches refused with a reason, and what a checkpoint's own parameter shapes
    say about the build arguments (`from_checkpoint`: a zoo branch whose layout differs, a variant)."""

    build: Callable[..., nn.Cell]
    source: str
    image_size: int = DEFAULT_IMAGE_SIZE
    refused_branches: dict[str, str] = field(default_factory=dict)
    from_checkpoint: Callable[[dict], dict] | None = None

    def checkpoint_arguments(self, parameters: dict) -> dict:
        """The build arguments (zoo_branch, batch_norm, num_classes, ...) a checkpoint's parameters show."""
        if self.from_checkpoint is None:
            return {}
        return self.from_checkpoint({name: tuple(value.shape) for name, value in parameters.items()})


ARCHITECTURES: dict[str, Architecture] = {
    "googlenet": Architecture(googlenet, "official/cv/googlenet"),
    "mobilenetv2": Architecture(
        mobilenetv2,
        "official/cv/mobilenetv2",
        # the 1.3 and 1.10 entries publish the same checkpoint (one sha256) while the zoo's top moved from
        # `head.1` (r1.3, r1.4) to `dense` (r1.5 on)
        from_checkpoint=layout_branch({"head.1.weight": "r1.3", "dense.weight": "r1.5"}),
    ),
    **{f"resnet{depth}": Architecture(functools.partial(resnet, depth), "official/cv/resnet") for depth in DEPTHS},
    "densenet121": Architecture(densenet121, "official/cv/densenet"),
    # one model-name for vgg16_imagenet2012, vgg16_bn_imagenet2012 (batch norm) and vgg16_cifar10 (batch norm,
    # 10 classes): the checkpoint's own parameters pick the variant
    "vgg16": Architecture(vgg16, "official/cv/vgg16", from_checkpoint=variant),
    "inceptionv3": Architecture(inceptionv3, "official/cv/inceptionv3", image_size=299),
    # mobilenetv3_imagenet2012 up to 1.9 and mobilenetv3large_imagenet2012 (research/cv/mobilenetv3_large,
    # whose definition has the same layout)
    "mobilenetv3_large": Architecture(mobilenetv3_large, "official/cv/mobilenetv3"),
    "resnext50": Architecture(
        resnext50, "official/cv/resnext", refused_branches=dict.fromkeys(("r1.3", "r1.4", "r1.5", "r1.6"), RESNEXT_TYPO)
    ),
}


def zoo_branch(repo_link: str, fields: dict) -> str | None:
    """The model zoo branch a hub entry was trained from: its zoo-branch (entries this job publishes say it), its
    repo-link's `/tree/rX.Y/`, else its mindspore-version."""
    if fields.get("zoo-branch"):
        return str(fields["zoo-branch"]).strip()
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


def for_descriptor(descriptor: Descriptor) -> tuple[Architecture, str | None]:
    """A hub descriptor's built-in architecture and the zoo branch its entry was trained from; BadInput, before
    anything is downloaded, for a model-name or branch the job cannot build."""
    branch = zoo_branch(descriptor.repo_link, descriptor.fields)
    return architecture(descriptor.model_name, branch), branch


def create_network(model_name: str, *args, zoo_branch: str | None = None, **kwargs) -> nn.Cell:
    """Build the registered architecture for a hub `model-name` as the hub conf's create_network does
    (`include_top`, `num_classes`), in the layout of `zoo_branch`."""
    factory = architecture(model_name, zoo_branch).build
    try:
        return factory(*args, zoo_branch=zoo_branch, **kwargs)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"cannot build '{model_name}' with these arguments: {exc}") from exc
