"""Exporting the fine-tuned network (with softmax) as MINDIR for serving."""

from __future__ import annotations

from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn


def export_mindir(network: nn.Cell, image_size: int, path: Path) -> Path:
    """Write `network` followed by Softmax, taking (N, 3, image_size, image_size) float32, to `path`
    (which must end in .mindir); returns `path`."""
    serving = nn.SequentialCell([network, nn.Softmax(axis=-1)])
    serving.set_train(False)
    example = ms.Tensor(np.zeros((1, 3, image_size, image_size), dtype=np.float32))
    ms.export(serving, example, file_name=str(path), file_format="MINDIR")
    return path
