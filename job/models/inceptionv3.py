"""InceptionV3 with the MindSpore model zoo's parameter names and shapes (official/cv/inceptionv3, one layout on
r1.3-r1.10): `Conv2d_1a` to `Mixed_7c` (2048 feature channels, 8x8 at the 299x299 input), the auxiliary
classifier `aux_logits` on Mixed_6e and the top `logits.fc`. The hub's checkpoints were trained with the
auxiliary classifier, so they hold it; the backbone (include_top=False) goes without it."""

from __future__ import annotations

from mindspore import nn, ops
from mindspore.common.initializer import XavierUniform

from job.models.heads import LogitsHead, PooledDenseHead

FEATURE_CHANNELS = 2048
AUX_CHANNELS = 768  # Mixed_6e's output, which the auxiliary classifier reads
KernelSize = int | tuple[int, int]


class ConvBlock(nn.Cell):
    """Conv2d (no bias, Xavier uniform) + BatchNorm2d(eps=1e-3) + ReLU as conv/bn/relu. The zoo's BatchNorm
    momentum, 0.9997 (set for its 250 ImageNet epochs), would keep the moving statistics eval mode uses near their
    starting values through a fine-tune; MindSpore's default, 0.9, lets them follow the new data."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: KernelSize = 1, stride: int = 1, pad_mode: str = "same"
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, pad_mode=pad_mode, weight_init=XavierUniform()
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.relu(self.bn(self.conv(x)))


def _chain(*cells: nn.Cell) -> nn.SequentialCell:
    return nn.SequentialCell(list(cells))


def _pooled(in_channels: int, out_channels: int) -> nn.SequentialCell:
    """3x3 average pooling (stride 1) then a 1x1 ConvBlock: the pool branch of the A, C and E blocks."""
    return _chain(nn.AvgPool2d(kernel_size=3, pad_mode="same"), ConvBlock(in_channels, out_channels))


class Mixed(nn.Cell):
    """Parallel branches over one input, concatenated on channels (the zoo's Inception_A to Inception_D; B and D
    have no `branch2`)."""

    def __init__(self, branch0: nn.Cell, branch1: nn.Cell, branch2: nn.Cell | None, branch_pool: nn.Cell) -> None:
        super().__init__()
        self.branch0 = branch0
        self.branch1 = branch1
        self.branch2 = branch2
        self.branch_pool = branch_pool

    def construct(self, x):
        if self.branch2 is None:
            return ops.concat((self.branch0(x), self.branch1(x), self.branch_pool(x)), 1)
        return ops.concat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch_pool(x)), 1)


def inception_a(in_channels: int, pool_features: int) -> Mixed:
    return Mixed(
        ConvBlock(in_channels, 64),
        _chain(ConvBlock(in_channels, 48), ConvBlock(48, 64, 5)),
        _chain(ConvBlock(in_channels, 64), ConvBlock(64, 96, 3), ConvBlock(96, 96, 3)),
        _pooled(in_channels, pool_features),
    )


def inception_b(in_channels: int) -> Mixed:
    return Mixed(
        ConvBlock(in_channels, 384, 3, stride=2, pad_mode="valid"),
        _chain(ConvBlock(in_channels, 64), ConvBlock(64, 96, 3), ConvBlock(96, 96, 3, stride=2, pad_mode="valid")),
        None,
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def inception_c(in_channels: int, channels_7x7: int) -> Mixed:
    c = channels_7x7
    return Mixed(
        ConvBlock(in_channels, 192),
        _chain(ConvBlock(in_channels, c), ConvBlock(c, c, (1, 7)), ConvBlock(c, 192, (7, 1))),
        _chain(
            ConvBlock(in_channels, c),
            ConvBlock(c, c, (7, 1)),
            ConvBlock(c, c, (1, 7)),
            ConvBlock(c, c, (7, 1)),
            ConvBlock(c, 192, (1, 7)),
        ),
        _pooled(in_channels, 192),
    )


def inception_d(in_channels: int) -> Mixed:
    return Mixed(
        _chain(ConvBlock(in_channels, 192), ConvBlock(192, 320, 3, stride=2, pad_mode="valid")),
        _chain(
            ConvBlock(in_channels, 192),
            ConvBlock(192, 192, (1, 7)),
            ConvBlock(192, 192, (7, 1)),
            ConvBlock(192, 192, 3, stride=2, pad_mode="valid"),
        ),
        None,
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


class InceptionE(nn.Cell):
    """The last blocks: 1x1; 1x1 then 1x3 and 3x1 side by side; 1x1, 3x3, then 1x3 and 3x1; pool branch."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch0 = ConvBlock(in_channels, 320)
        self.branch1 = ConvBlock(in_channels, 384)
        self.branch1_a = ConvBlock(384, 384, (1, 3))
        self.branch1_b = ConvBlock(384, 384, (3, 1))
        self.branch2 = _chain(ConvBlock(in_channels, 448), ConvBlock(448, 384, 3))
        self.branch2_a = ConvBlock(384, 384, (1, 3))
        self.branch2_b = ConvBlock(384, 384, (3, 1))
        self.branch_pool = _pooled(in_channels, 192)

    def construct(self, x):
        x1 = self.branch1(x)
        x2 = self.branch2(x)
        parts = (self.branch0(x), self.branch1_a(x1), self.branch1_b(x1), self.branch2_a(x2), self.branch2_b(x2))
        return ops.concat((*parts, self.branch_pool(x)), 1)


class InceptionV3Features(nn.Cell):
    """The stem and the Mixed blocks up to Mixed_7c: returns the (N, 2048, h, w) feature map (8x8 at 299x299;
    inputs from 75x75 up)."""

    out_channels = FEATURE_CHANNELS
    head_type = LogitsHead

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a = ConvBlock(3, 32, 3, stride=2, pad_mode="valid")
        self.Conv2d_2a = ConvBlock(32, 32, 3, pad_mode="valid")
        self.Conv2d_2b = ConvBlock(32, 64, 3)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b = ConvBlock(64, 80)
        self.Conv2d_4a = ConvBlock(80, 192, 3, pad_mode="valid")
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = inception_a(192, 32)
        self.Mixed_5c = inception_a(256, 64)
        self.Mixed_5d = inception_a(288, 64)
        self.Mixed_6a = inception_b(288)
        self.Mixed_6b = inception_c(768, 128)
        self.Mixed_6c = inception_c(768, 160)
        self.Mixed_6d = inception_c(768, 160)
        self.Mixed_6e = inception_c(768, 192)
        self.Mixed_7a = inception_d(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)

    def to_mixed_6e(self, x):
        """The stem and Mixed_5b to Mixed_6e: the (N, 768, h, w) map the auxiliary classifier reads."""
        x = self.maxpool1(self.Conv2d_2b(self.Conv2d_2a(self.Conv2d_1a(x))))
        x = self.maxpool2(self.Conv2d_4a(self.Conv2d_3b(x)))
        x = self.Mixed_6a(self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x))))
        return self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))

    def from_mixed_6e(self, x):
        return self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))

    def construct(self, x):
        return self.from_mixed_6e(self.to_mixed_6e(x))


class AuxLogits(nn.Cell):
    """The auxiliary classifier on Mixed_6e (17x17 at 299x299): 5x5 average pooling (stride 3), 1x1 convolution
    to 128 channels, 5x5 convolution to 768, Dense."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.avg_pool = nn.AvgPool2d(5, stride=3, pad_mode="valid")
        self.conv2d_0 = nn.Conv2d(AUX_CHANNELS, 128, kernel_size=1)
        self.conv2d_1 = nn.Conv2d(128, AUX_CHANNELS, kernel_size=5, pad_mode="valid")
        self.flatten = nn.Flatten()
        self.fc = nn.Dense(AUX_CHANNELS, num_classes)

    def construct(self, x):
        return self.fc(self.flatten(self.conv2d_1(self.conv2d_0(self.avg_pool(x)))))


class InceptionV3(InceptionV3Features):
    """The full network: the features, `aux_logits` (with `is_training`, the hub conf's default) and the top
    `logits.fc` behind dropout (keep 0.8). Returns the logits, and in training mode with the auxiliary classifier
    (logits, auxiliary logits), as the zoo's training loss takes them."""

    def __init__(self, num_classes: int, is_training: bool = True) -> None:
        super().__init__()
        self.aux_logits = AuxLogits(num_classes) if is_training else None
        self.dropout = nn.Dropout(p=0.2)
        self.logits = PooledDenseHead(num_classes, FEATURE_CHANNELS, "fc")

    def construct(self, x):
        middle = self.to_mixed_6e(x)
        pooled = self.logits.pooling()(self.from_mixed_6e(middle))
        logits = self.logits.dense_layer()(self.dropout(pooled))
        if self.training and self.aux_logits is not None:
            return logits, self.aux_logits(middle)
        return logits


def inceptionv3(
    num_classes: int | str = 1000, include_top: bool = True, zoo_branch: str | None = None, is_training: bool = True
) -> nn.Cell:
    """The model zoo's `InceptionV3(num_classes, is_training, include_top)` as its hub conf builds it, with the
    checkpoints' 1000 classes by default (the zoo's default is 10): the features alone, or the full network
    (without `aux_logits` when is_training is false: the layout a fine-tuned network has)."""
    if not include_top:
        return InceptionV3Features()
    return InceptionV3(int(num_classes), is_training)
