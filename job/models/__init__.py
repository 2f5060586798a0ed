"""Network architectures shipped with the job, registered by the hub descriptors' `model-name`."""

from __future__ import annotations

from collections.abc import Callable

from mindspore import nn

from job.errors import BadInput
from job.models.googlenet import googlenet

ARCHITECTURES: dict[str, Callable[..., nn.Cell]] = {
    "googlenet": googlenet,
}


def create_network(model_name: str, *args, **kwargs) -> nn.Cell:
    """Build the registered architecture for a hub `model-name` (case-insensitive)."""
    factory = ARCHITECTURES.get(model_name.lower())
    if factory is None:
        raise BadInput(
            f"no built-in network for hub model-name '{model_name}' (built in: "
            f"{', '.join(sorted(ARCHITECTURES))}); to run the hub's own network code, set "
            f"FT_HUB_NETWORK_DIR to a local directory holding its mindspore_hub_conf.py"
        )
    try:
        return factory(*args, **kwargs)
    except TypeError as exc:
        raise BadInput(f"cannot build '{model_name}' with these arguments: {exc}") from exc
