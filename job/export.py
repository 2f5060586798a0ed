"""The exported model: the best epoch's network as MINDIR (with softmax, any batch size) and as a checkpoint, and
model.json beside them saying what serving code must do to an image first and what the outputs mean."""

from __future__ import annotations

import json
from pathlib import Path

import mindspore as ms
from mindspore import nn

from job.data import EVAL_RESIZE_RATIO, IMAGENET_MEAN, IMAGENET_STD

MODEL_JSON = "model.json"
MODEL_MINDIR = "model.mindir"
MODEL_CHECKPOINT = "model.ckpt"
FORMAT = "mindspore-finetune/model/1"


def export_mindir(network: nn.Cell, image_size: int, path: Path) -> Path:
    """Write `network` followed by Softmax, taking (N, 3, image_size, image_size) float32 for any N, to `path`
    (which must end in .mindir); returns `path`."""
    serving = nn.SequentialCell([network, nn.Softmax(axis=-1)])
    serving.set_train(False)
    example = ms.Tensor(shape=[None, 3, image_size, image_size], dtype=ms.float32)
    ms.export(serving, example, file_name=str(path), file_format="MINDIR")
    return path


def model_description(image_size: int, classes: list[str], model: str, epoch: int, top1: float | None) -> dict:
    """model.json: the input, its preprocessing (the job's own evaluation transform), the classes in output order,
    and which epoch this is."""
    return {
        "format": FORMAT,
        "model": model,
        "epoch": epoch,
        "eval_top1": top1,
        "input": {"shape": [-1, 3, image_size, image_size], "dtype": "float32", "layout": "NCHW", "channels": "RGB"},
        "preprocessing": {
            "decode": "RGB, 8 bits per channel",
            "resize": int(image_size / EVAL_RESIZE_RATIO),
            "resize_ratio": EVAL_RESIZE_RATIO,
            "resize_meaning": "the shorter side becomes `resize` pixels (bilinear), keeping the aspect ratio",
            "center_crop": image_size,
            "size": image_size,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "normalize": "(pixel - mean) / std per channel, pixels in 0..255",
        },
        "output": {"mindir": "softmax probabilities, shape (N, classes)", "checkpoint": "logits"},
        "classes": classes,
        "files": {"mindir": MODEL_MINDIR, "checkpoint": MODEL_CHECKPOINT},
    }


def write_model_description(path: Path, description: dict) -> Path:
    path.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return path
