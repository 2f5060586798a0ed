"""MobileNetV2 with the MindSpore model zoo's parameter names and shapes (official/cv/mobilenetv2, r1.3-r1.10:
`features.0` to `features.18`, 1280 feature channels; the top's Dense is `dense` from r1.5 on, `head.1` in r1.3
and r1.4), so the hub's official checkpoints load strictly."""

from __future__ import annotations

from mindspore import nn

from job.models.heads import DenseHead, SequentialHead, WithHead

FEATURE_CHANNELS = 1280
STEM_CHANNELS = 32
# (expansion t, output channels c, repeats n, first stride s): the inverted residual stages of the paper
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class ConvBNReLU(nn.Cell):
    """Conv2d (bias-free, `pad` padding) + BatchNorm2d + ReLU6 as `features.0/1/2`; depthwise when `depthwise`."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, depthwise: bool = False
    ) -> None:
        super().__init__()
        conv = nn.Conv2d(
            in_channels,
            in_channels if depthwise else out_channels,
            kernel_size,
            stride,
            pad_mode="pad",
            padding=(kernel_size - 1) // 2,
            group=in_channels if depthwise else 1,
        )
        self.features = nn.SequentialCell([conv, nn.BatchNorm2d(out_channels), nn.ReLU6()])

    def construct(self, x):
        return self.features(x)


class InvertedResidual(nn.Cell):
    """1x1 expansion (unless t = 1), 3x3 depthwise, 1x1 linear projection as `conv.N`; a shortcut when the
    shape is kept."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expansion))
        self.shortcut = stride == 1 and in_channels == out_channels
        layers: list[nn.Cell] = [ConvBNReLU(in_channels, hidden, kernel_size=1)] if expansion != 1 else []
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, depthwise=True),
            nn.Conv2d(hidden, out_channels, kernel_size=1, stride=1, has_bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.SequentialCell(layers)

    def construct(self, x):
        if self.shortcut:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Backbone(nn.Cell):
    """The stem, the 17 inverted residual blocks and the 1x1 expansion to 1280 channels (width 1.0): returns the
    (N, 1280, h/32, w/32) feature map."""

    out_channels = FEATURE_CHANNELS
    head_type = DenseHead

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Cell] = [ConvBNReLU(3, STEM_CHANNELS, stride=2)]
        channels = STEM_CHANNELS
        for expansion, out_channels, repeats, stride in STAGES:
            for index in range(repeats):
                layers.append(InvertedResidual(channels, out_channels, stride if index == 0 else 1, expansion))
                channels = out_channels
        layers.append(ConvBNReLU(channels, FEATURE_CHANNELS, kernel_size=1))
        self.features = nn.SequentialCell(layers)

    def construct(self, x):
        return self.features(x)


SEQUENTIAL_TOP_BRANCHES = ("r1.3", "r1.4")


def mobilenetv2(num_classes: int | str = 1000, include_top: bool = True, zoo_branch: str | None = None) -> nn.Cell:
    """The model zoo's MobileNetV2 of `zoo_branch` (default: the newest layout): the backbone alone, or with its
    top. The hub conf's num_classes default is the string "10"; strings of digits are accepted as it accepts
    them."""
    backbone = MobileNetV2Backbone()
    if not include_top:
        return backbone
    return WithHead(backbone, int(num_classes), SequentialHead if zoo_branch in SEQUENTIAL_TOP_BRANCHES else None)
