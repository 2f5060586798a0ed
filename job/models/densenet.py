"""DenseNet-121 with the MindSpore model zoo's parameter names and shapes (official/cv/densenet, one layout on
r1.3-r1.10: the features as `backbone.features.*`, the top's Dense as `head.fc`), so the hub's official
checkpoints load strictly."""

from __future__ import annotations

from collections import OrderedDict

from mindspore import nn, ops

from job.models.heads import UnderBackbone, WithHead

GROWTH_RATE = 32  # channels each dense layer adds
BOTTLENECK_CHANNELS = 4 * GROWTH_RATE  # the 1x1 convolution's width before each 3x3
STEM_CHANNELS = 64
BLOCKS = (6, 12, 24, 16)  # dense layers per block
FEATURE_CHANNELS = 1024


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free convolution padded to keep the size (divided by the stride)."""
    padding = (kernel_size - 1) // 2
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad_mode="pad", padding=padding, has_bias=False)


class DenseLayer(nn.Cell):
    """BatchNorm, ReLU, 1x1 convolution, BatchNorm, ReLU, 3x3 convolution: GROWTH_RATE new channels."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = _conv(in_channels, BOTTLENECK_CHANNELS, 1)
        self.norm2 = nn.BatchNorm2d(BOTTLENECK_CHANNELS)
        self.relu2 = nn.ReLU()
        self.conv2 = _conv(BOTTLENECK_CHANNELS, GROWTH_RATE, 3)

    def construct(self, x):
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Cell):
    """Dense layers as `cell_list.N`, each fed every earlier output concatenated on channels."""

    def __init__(self, layers: int, in_channels: int) -> None:
        super().__init__()
        self.cell_list = nn.CellList([DenseLayer(in_channels + index * GROWTH_RATE) for index in range(layers)])
        self.concat = ops.Concat(axis=1)

    def construct(self, x):
        for layer in self.cell_list:
            x = self.concat((x, layer(x)))
        return x


class Transition(nn.Cell):
    """BatchNorm, ReLU, 1x1 convolution halving the channels, 2x2 max pooling, as `features.norm/conv`."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.features = nn.SequentialCell(
            OrderedDict(
                norm=nn.BatchNorm2d(in_channels),
                relu=nn.ReLU(),
                conv=_conv(in_channels, in_channels // 2, 1),
                pool=nn.MaxPool2d(kernel_size=2, stride=2),
            )
        )

    def construct(self, x):
        return self.features(x)


class DenseNetFeatures(nn.Cell):
    """The zoo's Densenet body as `features.*`: a 7x7 stem with max pooling, the four dense blocks with a
    transition between each, then BatchNorm and ReLU."""

    def __init__(self) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Cell] = OrderedDict(
            conv0=_conv(3, STEM_CHANNELS, 7, stride=2),
            norm0=nn.BatchNorm2d(STEM_CHANNELS),
            relu0=nn.ReLU(),
            pool0=nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same"),
        )
        channels = STEM_CHANNELS
        for number, depth in enumerate(BLOCKS, start=1):
            layers[f"denseblock{number}"] = DenseBlock(depth, channels)
            channels += depth * GROWTH_RATE
            if number < len(BLOCKS):
                layers[f"transition{number}"] = Transition(channels)
                channels //= 2
        layers["norm5"] = nn.BatchNorm2d(channels)
        layers["relu5"] = nn.ReLU()
        self.features = nn.SequentialCell(layers)

    def construct(self, x):
        return self.features(x)


def densenet121(num_classes: int | str = 1000, include_top: bool = True, zoo_branch: str | None = None) -> nn.Cell:
    """The zoo's `DenseNet121(num_classes, include_top)`: the backbone alone, or with the top. The hub conf has no
    num_classes default; this one is the official checkpoints' (ImageNet's 1000 classes)."""
    backbone = UnderBackbone(DenseNetFeatures(), FEATURE_CHANNELS)
    return WithHead(backbone, int(num_classes)) if include_top else backbone
