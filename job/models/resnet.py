"""ResNet-18, 34, 50, 101 and 152 with the MindSpore model zoo's parameter names and shapes (official/cv/resnet,
r1.3-r1.10, one layout on every branch): `conv1`, `bn1`, `layer1` to `layer4` of residual blocks with
`down_sample_layer.0/1` where the shape changes, the top's Dense `end_point`. As in the zoo, ResNet-18 and 34
(its `res_base` variant) pad explicitly and name their blocks' BatchNorms `bn1d`/`bn2d`; the deeper ones use
'same' padding and bottleneck blocks. The hub's ImageNet checkpoints have 1001 classes."""

from __future__ import annotations

from dataclasses import dataclass

from mindspore import nn, ops

from job.models.heads import EndPointHead, WithHead

STAGE_STRIDES = (1, 2, 2, 2)


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int, explicit_padding: bool) -> nn.Conv2d:
    """A bias-free convolution: symmetric `pad` padding (res_base) or 'same'."""
    if explicit_padding:
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad_mode="pad", padding=(kernel_size - 1) // 2)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad_mode="same")


def _batch_norm(channels: int, res_base: bool = False) -> nn.BatchNorm2d:
    if res_base:
        return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
    return nn.BatchNorm2d(channels, eps=1e-4, momentum=0.9)


def _down_sample(in_channels: int, out_channels: int, stride: int, res_base: bool) -> nn.SequentialCell | None:
    """The shortcut's 1x1 projection and BatchNorm, where a block changes the shape."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.SequentialCell(
        [_conv(in_channels, out_channels, 1, stride, res_base), _batch_norm(out_channels, res_base)]
    )


class BasicBlock(nn.Cell):
    """Two 3x3 convolutions (`conv1`/`bn1d`, `conv2`/`bn2d`) and the shortcut: the zoo's ResidualBlockBase."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv(in_channels, out_channels, 3, stride, explicit_padding=True)
        self.bn1d = _batch_norm(out_channels)
        self.conv2 = _conv(out_channels, out_channels, 3, 1, explicit_padding=True)
        self.bn2d = _batch_norm(out_channels)
        self.relu = nn.ReLU()
        self.down_sample_layer = _down_sample(in_channels, out_channels, stride, res_base=True)

    def construct(self, x):
        out = self.relu(self.bn1d(self.conv1(x)))
        out = self.bn2d(self.conv2(out))
        identity = x if self.down_sample_layer is None else self.down_sample_layer(x)
        return self.relu(out + identity)


class Bottleneck(nn.Cell):
    """1x1 reduction, 3x3 (carrying the stride), 1x1 expansion to `out_channels` (4x the width), each with its
    BatchNorm, and the shortcut: the zoo's ResidualBlock."""

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        width = out_channels // self.expansion
        self.conv1 = _conv(in_channels, width, 1, 1, explicit_padding=False)
        self.bn1 = _batch_norm(width)
        self.conv2 = _conv(width, width, 3, stride, explicit_padding=False)
        self.bn2 = _batch_norm(width)
        self.conv3 = _conv(width, out_channels, 1, 1, explicit_padding=False)
        self.bn3 = _batch_norm(out_channels)
        self.relu = nn.ReLU()
        self.down_sample_layer = _down_sample(in_channels, out_channels, stride, res_base=False)

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.down_sample_layer is None else self.down_sample_layer(x)
        return self.relu(out + identity)


@dataclass(frozen=True)
class Depth:
    """How many blocks each stage has, which block, and the stages' output channels."""

    blocks: tuple[int, int, int, int]
    block: type[nn.Cell]
    widths: tuple[int, int, int, int]

    @property
    def res_base(self) -> bool:
        return self.block is BasicBlock


BASIC_WIDTHS = (64, 128, 256, 512)
BOTTLENECK_WIDTHS = (256, 512, 1024, 2048)
DEPTHS = {
    18: Depth((2, 2, 2, 2), BasicBlock, BASIC_WIDTHS),
    34: Depth((3, 4, 6, 3), BasicBlock, BASIC_WIDTHS),
    50: Depth((3, 4, 6, 3), Bottleneck, BOTTLENECK_WIDTHS),
    101: Depth((3, 4, 23, 3), Bottleneck, BOTTLENECK_WIDTHS),
    152: Depth((3, 8, 36, 3), Bottleneck, BOTTLENECK_WIDTHS),
}


class ResNetBackbone(nn.Cell):
    """The 7x7 stem, max pooling and four stages: returns the (N, C, h/32, w/32) feature map."""

    head_type = EndPointHead

    def __init__(self, depth: Depth) -> None:
        super().__init__()
        self.conv1 = _conv(3, 64, 7, 2, explicit_padding=depth.res_base)
        self.bn1 = _batch_norm(64, depth.res_base)
        self.relu = ops.ReLU()
        # res_base pads by one and pools without padding; the others pool with 'same'
        self.pad = nn.Pad(paddings=((0, 0), (0, 0), (1, 1), (1, 1))) if depth.res_base else None
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="valid" if depth.res_base else "same")
        channels = 64
        for index, (blocks, width, stride) in enumerate(zip(depth.blocks, depth.widths, STAGE_STRIDES), start=1):
            stage = [depth.block(channels if n == 0 else width, width, stride if n == 0 else 1) for n in range(blocks)]
            setattr(self, f"layer{index}", nn.SequentialCell(stage))
            channels = width
        self.out_channels = channels

    def construct(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self.pad is not None:
            x = self.pad(x)
        x = self.maxpool(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def resnet(
    depth: int,
    num_classes: int | str = 1001,
    include_top: bool = True,
    zoo_branch: str | None = None,
    class_num: int | None = None,
) -> nn.Cell:
    """The zoo's ResNet of `depth` (every branch has one layout): the backbone alone, or with its top. The hub
    conf's own keyword `class_num` is accepted for `num_classes`."""
    backbone = ResNetBackbone(DEPTHS[depth])
    if not include_top:
        return backbone
    return WithHead(backbone, int(num_classes if class_num is None else class_num))
