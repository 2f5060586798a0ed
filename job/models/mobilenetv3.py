"""MobileNetV3-Large with the MindSpore model zoo's parameter names and shapes (official/cv/mobilenetv3, one
layout on r1.3-r1.10; research/cv/mobilenetv3_large defines the same layout): `features.0` to `features.22`,
ending in the zoo's pooling and 1x1 expansion to 1280 channels (a (N, 1280, 1, 1) map), and the top `output`."""

from __future__ import annotations

from mindspore import nn

from job.models.heads import OutputHead, WithHead

STEM_CHANNELS = 16
LAST_CHANNELS = 960
FEATURE_CHANNELS = 1280
# (kernel, expansion channels, output channels, squeeze-and-excite, activation, stride): the blocks of the paper
BLOCKS = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
ACTIVATIONS = {"relu": nn.ReLU, "hswish": nn.HSwish}


def _conv1x1(in_channels: int, out_channels: int, has_bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, pad_mode="pad", has_bias=has_bias)


class ConvUnit(nn.Cell):
    """Conv2d (bias-free, `pad` padding of kernel // 2) + BatchNorm2d as conv/bn, then the activation unless
    None; depthwise with `groups` = channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        activation: str | None = "relu",
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, pad_mode="pad", padding=kernel_size // 2, group=groups
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = ACTIVATIONS[activation]() if activation else None

    def construct(self, x):
        x = self.bn(self.conv(x))
        return x if self.act is None else self.act(x)


class SqueezeExcite(nn.Cell):
    """Channel attention: mean over H and W, 1x1 convolutions (with bias) to a quarter of the channels (rounded
    up to a multiple of 8) and back, ReLU then hard sigmoid, scaling the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        reduced = -(-(channels // 4) // 8) * 8
        self.conv1 = _conv1x1(channels, reduced, has_bias=True)
        self.act1 = nn.ReLU()
        self.conv2 = _conv1x1(reduced, channels, has_bias=True)
        self.act2 = nn.HSigmoid()

    def construct(self, x):
        return x * self.act2(self.conv2(self.act1(self.conv1(x.mean(axis=(2, 3), keep_dims=True)))))


class ResUnit(nn.Cell):
    """1x1 expansion (when the expansion differs from the output channels) as `expand`, depthwise convolution
    `conv1`, squeeze-and-excite `se`, linear 1x1 projection `conv2`; a shortcut when the shape is kept."""

    def __init__(
        self, in_channels: int, kernel: int, hidden: int, out_channels: int, se: bool, activation: str, stride: int
    ) -> None:
        super().__init__()
        self.expand = ConvUnit(in_channels, hidden, activation=activation) if hidden != out_channels else None
        self.conv1 = ConvUnit(hidden, hidden, kernel, stride, activation, groups=hidden)
        self.se = SqueezeExcite(hidden) if se else None
        self.conv2 = ConvUnit(hidden, out_channels, activation=None)
        self.shortcut = stride == 1 and in_channels == out_channels

    def construct(self, x):
        out = x if self.expand is None else self.expand(x)
        out = self.conv1(out)
        if self.se is not None:
            out = self.se(out)
        out = self.conv2(out)
        return x + out if self.shortcut else out


class GlobalMean(nn.Cell):
    """Mean over H and W, keeping them: (N, C, H, W) -> (N, C, 1, 1)."""

    def construct(self, x):
        return x.mean(axis=(2, 3), keep_dims=True)


class MobileNetV3Features(nn.Cell):
    """The stem, the 15 blocks, the 1x1 convolution to 960 channels, pooling and the 1x1 expansion to 1280
    (no BatchNorm): returns the (N, 1280, 1, 1) map."""

    out_channels = FEATURE_CHANNELS
    head_type = OutputHead

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Cell] = [
            nn.Conv2d(3, STEM_CHANNELS, 3, 2, pad_mode="pad", padding=1),
            nn.BatchNorm2d(STEM_CHANNELS),
            nn.HSwish(),
        ]
        channels = STEM_CHANNELS
        for kernel, hidden, out_channels, se, activation, stride in BLOCKS:
            layers.append(ResUnit(channels, kernel, hidden, out_channels, se, activation, stride))
            channels = out_channels
        layers += [
            _conv1x1(channels, LAST_CHANNELS),
            nn.BatchNorm2d(LAST_CHANNELS),
            nn.HSwish(),
            GlobalMean(),
            _conv1x1(LAST_CHANNELS, FEATURE_CHANNELS),
            nn.HSwish(),
        ]
        self.features = nn.SequentialCell(layers)

    def construct(self, x):
        return self.features(x)


def mobilenetv3_large(
    num_classes: int | str = 1000, include_top: bool = True, zoo_branch: str | None = None
) -> nn.Cell:
    """The model zoo's `mobilenet_v3_large(num_classes, include_top)` (width 1.0, no final dropout): the features
    alone, or with the top `output` (a 1x1 convolution in the zoo, squeezed: the same function of the pooled
    map)."""
    features = MobileNetV3Features()
    return WithHead(features, int(num_classes)) if include_top else features
