"""Network architectures shipped with the job, registered by the hub descriptors' `model-name`, each with the
model zoo branches whose layout it reproduces and its default input size."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mindspore import nn

from contract.models import unsupported
from job.errors import BadInput
from job.models.googlenet import googlenet
from job.models.mobilenetv2 import mobilenetv2

ZOO_BRANCH = re.compile(r"/tree/(r\d+\.\d+)/")


@dataclass(frozen=True)
class Architecture:
    """A built-in network: `build(num_classes, include_top, zoo_branch)`, its default input size, the zoo
    source it follows, and the zoo branches refused with a reason."""

    build: Callable[..., nn.Cell]
    source: str
    image_size: int = 224
    refused_branches: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, str] = field(default_factory=dict)  # a parameter name -> the branch whose layout has it

    def checkpoint_branch(self, parameters: dict) -> str | None:
        """The zoo branch whose layout a checkpoint's parameter names show, where branches differ."""
        return next((branch for name, branch in self.layouts.items() if name in parameters), None)


ARCHITECTURES: dict[str, Architecture] = {
    "googlenet": Architecture(googlenet, "official/cv/googlenet"),
    "mobilenetv2": Architecture(
        mobilenetv2,
        "official/cv/mobilenetv2",
        # the 1.3 and 1.10 entries publish the same checkpoint (one sha256) while the zoo's top moved from
        # `head.1` (r1.3, r1.4) to `dense` (r1.5 on)
        layouts={"head.1.weight": "r1.3", "dense.weight": "r1.5"},
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
