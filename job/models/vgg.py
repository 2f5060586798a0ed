"""VGG-16 with the MindSpore model zoo's parameter names and shapes (official/cv/vgg16, one layout per variant on
r1.3-r1.10): bias-free 3x3 convolutions in `layers.*`, each followed by BatchNorm with `batch_norm` (the
vgg16_bn_imagenet2012 and vgg16_cifar10 checkpoints), and the classifier `classifier.0/3/6`. The zoo builds the
classifier without the top too and only skips it; here the backbone leaves it out (its 119.6M parameters would
be saved with every checkpoint and never used), and the official checkpoints still load strictly into it."""

from __future__ import annotations

from mindspore import nn
from mindspore.common.initializer import HeNormal

from job.models.heads import DenseHead

STAGES = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))  # (3x3 convolutions, channels), each then 2x2 max pool
FEATURE_CHANNELS = 512
CLASSIFIER_INPUT = FEATURE_CHANNELS * 7 * 7  # the feature map of a 224 x 224 image, flattened
HIDDEN = 4096
DROPOUT = 0.5


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A bias-free 3x3 convolution keeping the size, He-initialised (fan out) as with the zoo's ImageNet
    settings, so that the plain stack also trains from scratch."""
    init = HeNormal(mode="fan_out", nonlinearity="relu")
    return nn.Conv2d(in_channels, out_channels, 3, pad_mode="pad", padding=1, has_bias=False, weight_init=init)


def _layers(batch_norm: bool) -> nn.SequentialCell:
    layers: list[nn.Cell] = []
    in_channels = 3
    for convolutions, channels in STAGES:
        for _ in range(convolutions):
            layers.append(_conv(in_channels, channels))
            layers += [nn.BatchNorm2d(channels), nn.ReLU()] if batch_norm else [nn.ReLU()]
            in_channels = channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.SequentialCell(layers)


class Vgg16(nn.Cell):
    """The zoo's Vgg on its 16-layer configuration. With the top: flatten and the classifier (Dense 25088 ->
    4096 -> 4096 -> num_classes, ReLU and dropout between; 224 x 224 input). Without: the (N, 512, h/32, w/32)
    feature map."""

    out_channels = FEATURE_CHANNELS
    head_type = DenseHead  # the new top's Dense is `dense`, apart from the zoo's `classifier.*`

    def __init__(self, num_classes: int = 1000, batch_norm: bool = False, include_top: bool = True) -> None:
        super().__init__()
        self.layers = _layers(batch_norm)
        self.flatten = nn.Flatten()
        self.classifier = (
            nn.SequentialCell(
                [
                    nn.Dense(CLASSIFIER_INPUT, HIDDEN),
                    nn.ReLU(),
                    nn.Dropout(p=DROPOUT),
                    nn.Dense(HIDDEN, HIDDEN),
                    nn.ReLU(),
                    nn.Dropout(p=DROPOUT),
                    nn.Dense(HIDDEN, num_classes),
                ]
            )
            if include_top
            else None
        )

    def construct(self, x):
        x = self.layers(x)
        if self.classifier is not None:
            x = self.classifier(self.flatten(x))
        return x


def vgg16(
    num_classes: int | str = 1000, include_top: bool = True, zoo_branch: str | None = None, batch_norm: bool = False
) -> nn.Cell:
    """The zoo's `vgg16(num_classes, args, include_top=...)` with `args.batch_norm`; the hub conf takes the
    settings from cifar10_config.yaml (batch norm) for 10 classes and imagenet2012_config.yaml (none) for 1000,
    here they come from the checkpoint (`variant`). The default is the ImageNet layout."""
    return Vgg16(int(num_classes), batch_norm, include_top)


def variant(shapes: dict) -> dict:
    """The build arguments a checkpoint's parameter shapes show: batch norm (a BatchNorm after the first
    convolution) and the classifier's class count."""
    shown: dict = {"batch_norm": "layers.1.gamma" in shapes}
    if "classifier.6.weight" in shapes:
        shown["num_classes"] = shapes["classifier.6.weight"][0]
    return shown
