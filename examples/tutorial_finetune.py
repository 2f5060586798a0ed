"""The MindSpore Hub tutorial "fine-tuning after load", runnable: a hub backbone loaded without its top through
`mindspore_hub`, a new head (mean over H and W, flatten, Dense), Momentum 0.9 with weight decay 4e-5, the
warmup + cosine learning rate, a checkpoint every epoch, then evaluation with Softmax.

The tutorial's own code, with what kept it from running fixed: its imports, the `get_lr` it calls, and the
evaluation set (built with `do_train=True`, so evaluated on augmented crops) built for evaluation.

    python examples/tutorial_finetune.py --model mindspore/1.6/googlenet_cifar10 \\
        --train garbage26-split/train --eval garbage26-split/eval --epochs 60

FT_HUB_MIRROR, FT_HUB_CACHE and FT_HUB_OFFLINE choose where the hub entry comes from, as for the job.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import mindspore as ms
import mindspore.dataset as ds
import mindspore.dataset.transforms as transforms
import mindspore.dataset.vision as vision
import mindspore_hub as mshub
import numpy as np
from mindspore import nn, ops
from mindspore.train import Accuracy, CheckpointConfig, LossMonitor, Model, ModelCheckpoint

MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


def create_dataset(path: str, do_train: bool, batch_size: int, image_size: int):
    """An ImageFolder set: random crops and flips for training, resize and centre crop for evaluation."""
    dataset = ds.ImageFolderDataset(path, shuffle=do_train, decode=False)
    if do_train:
        image_ops = [vision.RandomCropDecodeResize(image_size, scale=(0.08, 1.0)), vision.RandomHorizontalFlip()]
    else:
        image_ops = [vision.Decode(), vision.Resize(int(image_size / 0.875)), vision.CenterCrop(image_size)]
    image_ops += [vision.Normalize(MEAN, STD), vision.HWC2CHW()]
    dataset = dataset.map(image_ops, input_columns="image")
    dataset = dataset.map(transforms.TypeCast(ms.int32), input_columns="label")
    return dataset.batch(batch_size, drop_remainder=do_train)


def get_lr(lr_init: float, lr_max: float, lr_end: float, warmup_epochs: int, total_epochs: int, steps: int):
    """Per-step learning rates: linear warmup from lr_init to lr_max, then cosine decay to lr_end."""
    total, warmup = total_epochs * steps, warmup_epochs * steps
    rates = []
    for step in range(total):
        if step < warmup:
            rate = lr_init + (lr_max - lr_init) * step / warmup
        else:
            progress = (step - warmup) / max(1, total - warmup)
            rate = lr_end + (lr_max - lr_end) * 0.5 * (1 + math.cos(math.pi * progress))
        rates.append(rate)
    return np.array(rates, dtype=np.float32)


class ReduceMeanFlatten(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.mean = ops.ReduceMean(keep_dims=True)
        self.flatten = nn.Flatten()

    def construct(self, x):
        return self.flatten(self.mean(x, (2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mindspore/1.6/googlenet_cifar10")
    parser.add_argument("--train", required=True)
    parser.add_argument("--eval", required=True)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--lr-max", type=float, default=0.01)
    parser.add_argument("--output", default="ckpt")
    parser.add_argument("--device", default="CPU", choices=["CPU", "GPU", "Ascend"])
    arguments = parser.parse_args()

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device(arguments.device)
    classes = sorted(path.name for path in Path(arguments.train).iterdir() if path.is_dir())
    train = create_dataset(arguments.train, True, arguments.batch_size, arguments.image_size)
    evaluation = create_dataset(arguments.eval, False, arguments.batch_size, arguments.image_size)

    backbone = mshub.load(arguments.model, include_top=False)
    network = nn.SequentialCell([backbone, ReduceMeanFlatten(), nn.Dense(backbone.out_channels, len(classes))])
    steps = train.get_dataset_size()
    rates = get_lr(0.0, arguments.lr_max, 0.0, 2, arguments.epochs, steps)
    optimizer = nn.Momentum(network.trainable_params(), ms.Tensor(rates), momentum=0.9, weight_decay=4e-5)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    with_softmax = nn.WithEvalCell(nn.SequentialCell([network, nn.Softmax()]), loss)  # (loss, probabilities, label)
    model = Model(
        network,
        loss_fn=loss,
        optimizer=optimizer,
        metrics={"accuracy": Accuracy()},
        eval_network=with_softmax,
        eval_indexes=[0, 1, 2],
    )
    checkpoints = ModelCheckpoint(
        prefix="finetune", directory=arguments.output, config=CheckpointConfig(save_checkpoint_steps=steps)
    )
    model.train(arguments.epochs, train, callbacks=[checkpoints, LossMonitor(steps)], dataset_sink_mode=False)

    print(f"accuracy: {model.eval(evaluation, dataset_sink_mode=False)['accuracy']:.4f}")


if __name__ == "__main__":
    main()
