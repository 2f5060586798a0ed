"""ResNeXt-50 (32x4d) with the MindSpore model zoo's parameter names and shapes (official/cv/resnext, one layout
on r1.3-r1.10; the hub conf builds it from r1.7 on): the ResNet as `backbone` (2048 feature channels) and the top
`head.fc`, as the zoo's ImageClassificationNetwork names them. Each grouped 3x3 convolution keeps the zoo's
Ascend form, the checkpoints' one: 32 convolutions `conv2.convs.0` to `conv2.convs.31`."""

from __future__ import annotations

from mindspore import nn, ops

from job.models.heads import UnderBackbone, WithHead

GROUPS = 32
WIDTH_PER_GROUP = 4
EXPANSION = 4
STEM_CHANNELS = 64
FEATURE_CHANNELS = 2048


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free Conv2d with `pad` padding of kernel_size // 2."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad_mode="pad", padding=kernel_size // 2)


class GroupConv(nn.Cell):
    """A 3x3 convolution in GROUPS groups, one Conv2d per group as `convs.N`, run as one grouped convolution."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.convs = nn.CellList([_conv(channels // GROUPS, channels // GROUPS, 3, stride) for _ in range(GROUPS)])

    def construct(self, x):
        weights = ()
        for conv in self.convs:
            weights += (conv.weight,)
        return ops.conv2d(x, ops.concat(weights), stride=self.stride, pad_mode="pad", padding=1, groups=GROUPS)


class Projection(nn.Cell):
    """The shortcut's 1x1 convolution (strided) + BatchNorm2d, as conv/bn."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = _conv(in_channels, out_channels, 1, stride)
        self.bn = nn.BatchNorm2d(out_channels)

    def construct(self, x):
        return self.bn(self.conv(x))


class GroupedBottleneck(nn.Cell):
    """1x1 to planes x 2 channels, grouped 3x3 (strided), 1x1 to planes x 4, each with BatchNorm2d; the
    shortcut projected (`down_sample`) where the shape changes."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        width = planes * WIDTH_PER_GROUP // 64 * GROUPS
        out_channels = planes * EXPANSION
        self.conv1 = _conv(in_channels, width, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.conv2 = GroupConv(width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv(width, out_channels, 1)
        self.bn3 = nn.BatchNorm2d(out_channels)
        projected = stride != 1 or in_channels != out_channels
        self.down_sample = Projection(in_channels, out_channels, stride) if projected else None

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.down_sample is None else self.down_sample(x)
        return self.relu(out + identity)


def _stage(in_channels: int, planes: int, blocks: int, stride: int) -> nn.SequentialCell:
    first = GroupedBottleneck(in_channels, planes, stride)
    return nn.SequentialCell([first] + [GroupedBottleneck(planes * EXPANSION, planes) for _ in range(blocks - 1)])


class ResNeXt(nn.Cell):
    """The zoo's ResNet with grouped bottlenecks: 7x7 stem, max pooling, layer1 to layer4 (3, 4, 6, 3 blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = _conv(3, STEM_CHANNELS, 7, stride=2)
        self.bn = nn.BatchNorm2d(STEM_CHANNELS)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
        self.layer1 = _stage(STEM_CHANNELS, 64, 3, 1)
        self.layer2 = _stage(256, 128, 4, 2)
        self.layer3 = _stage(512, 256, 6, 2)
        self.layer4 = _stage(1024, 512, 3, 2)

    def construct(self, x):
        x = self.maxpool(self.relu(self.bn(self.conv(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def resnext50(num_classes: int | str = 1000, include_top: bool = True, zoo_branch: str | None = None) -> nn.Cell:
    """The model zoo's `get_network("resnext50", num_classes, include_top)` (its default platform, Ascend): the
    features alone, or with the top `head.fc`."""
    features = UnderBackbone(ResNeXt(), FEATURE_CHANNELS)
    return WithHead(features, int(num_classes)) if include_top else features
