"""GoogleNet with the MindSpore model zoo's exact parameter names and shapes (official/cv/googlenet)."""

from __future__ import annotations

from mindspore import nn, ops
from mindspore.common.initializer import TruncatedNormal

from job.models.heads import WithHead

FEATURE_CHANNELS = 1024


class Conv2dBlock(nn.Cell):
    """Conv2d (no bias) + BatchNorm2d(eps=1e-3) + ReLU, named conv/bn/relu as in the model zoo."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            pad_mode="same",
            weight_init=TruncatedNormal(0.02),
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Cell):
    """Inception block: 1x1, 1x1->3x3, 1x1->3x3 and maxpool->1x1 branches, concatenated on channels."""

    def __init__(
        self, in_channels: int, n1x1: int, n3x3red: int, n3x3: int, n5x5red: int, n5x5: int, pool_planes: int
    ) -> None:
        super().__init__()
        self.b1 = Conv2dBlock(in_channels, n1x1)
        self.b2 = nn.SequentialCell([Conv2dBlock(in_channels, n3x3red), Conv2dBlock(n3x3red, n3x3, kernel_size=3)])
        self.b3 = nn.SequentialCell([Conv2dBlock(in_channels, n5x5red), Conv2dBlock(n5x5red, n5x5, kernel_size=3)])
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=1, pad_mode="same")
        self.b4 = Conv2dBlock(in_channels, pool_planes)
        self.concat = ops.Concat(axis=1)

    def construct(self, x):
        return self.concat((self.b1(x), self.b2(x), self.b3(x), self.b4(self.maxpool(x))))


class GoogleNetFeatures(nn.Cell):
    """GoogleNet up to block5b: returns the (N, 1024, h, w) feature map."""

    out_channels = FEATURE_CHANNELS

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2dBlock(3, 64, kernel_size=7, stride=2)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
        self.conv2 = Conv2dBlock(64, 64)
        self.conv3 = Conv2dBlock(64, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
        self.block3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.block3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
        self.block4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.block4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.block4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.block4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.block4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(kernel_size=2, stride=2, pad_mode="same")
        self.block5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.block5b = Inception(832, 384, 192, 384, 48, 128, 128)

    def construct(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.block3b(self.block3a(x)))
        x = self.block4e(self.block4d(self.block4c(self.block4b(self.block4a(x)))))
        x = self.maxpool4(x)
        return self.block5b(self.block5a(x))


def googlenet(num_classes: int | str = 10, include_top: bool = True, zoo_branch: str | None = None) -> nn.Cell:
    """The model zoo's `GoogleNet(num_classes, include_top)`: features only, or features with the top (one
    layout on every branch the hub publishes, r1.3 to r1.10)."""
    features = GoogleNetFeatures()
    return WithHead(features, int(num_classes)) if include_top else features
