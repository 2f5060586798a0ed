"""What the fine-tuning benchmarks share: a small real data set, a local hub entry, the machine's description."""

from __future__ import annotations

import os
import platform
from pathlib import Path

HUB_ID = "bench/1.0/googlenet"


def prepare_workload(work: Path, digits: list[int]) -> tuple[Path, Path, Path]:
    """Digits at 32x32 (train, eval roots) and a hub root holding HUB_ID, a freshly initialised GoogleNet."""
    import mindspore as ms

    from job.digits import write_digits
    from job.hub.publish import publish
    from job.models.googlenet import googlenet

    train, evaluation = write_digits(work / "data", digits)
    checkpoint = work / "googlenet.ckpt"
    ms.save_checkpoint(googlenet(num_classes=10), str(checkpoint))
    publish(work / "hub", HUB_ID, "googlenet", checkpoint)
    return train, evaluation, work / "hub"


def machine() -> str:
    """CPU model, core count, Python and MindSpore versions."""
    from importlib.metadata import version

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return (f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"MindSpore {version('mindspore')}")
