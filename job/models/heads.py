"""The classification top shared by the architectures: global average pooling and one Dense layer, named as in
each network's model zoo definition, on any backbone that says how many channels it gives (`out_channels`)."""

from __future__ import annotations

from mindspore import nn
from mindspore.common.initializer import TruncatedNormal

from job.errors import BadInput


def feature_channels(backbone: nn.Cell) -> int:
    """The channels of a backbone's feature map: its `out_channels` (every built-in backbone has it, as the model
    zoo's MobileNetV2Backbone does)."""
    channels = getattr(backbone, "out_channels", None)
    if not isinstance(channels, int) or channels <= 0:
        raise BadInput(
            f"the backbone {type(backbone).__name__} does not say how many channels its features have; give it an "
            f"integer attribute out_channels (networks from FT_HUB_NETWORK_DIR need it for the new head)"
        )
    return channels


class GlobalAveragePool(nn.Cell):
    """Mean over H and W, flattened: (N, C, H, W) -> (N, C)."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()

    def construct(self, features):
        return self.flatten(features.mean(axis=(2, 3), keep_dims=True))


def _dense(in_channels: int, num_classes: int) -> nn.Dense:
    return nn.Dense(in_channels, num_classes, weight_init=TruncatedNormal(0.02), bias_init=TruncatedNormal(0.02))


class ClassifierHead(nn.Cell):
    """GoogleNet's top (and the default): mean over H and W, flatten, Dense(in_channels, num_classes) named
    `classifier`."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.pool = GlobalAveragePool()
        self.classifier = _dense(in_channels, num_classes)

    def pooling(self) -> nn.Cell:
        return self.pool

    def dense_layer(self) -> nn.Dense:
        return self.classifier

    def construct(self, features):
        return self.classifier(self.pool(features))


class DenseHead(nn.Cell):
    """The same top with its Dense named `dense` (MobileNetV2's MobileNetV2Head from r1.5 on)."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.pool = GlobalAveragePool()
        self.dense = _dense(in_channels, num_classes)

    def pooling(self) -> nn.Cell:
        return self.pool

    def dense_layer(self) -> nn.Dense:
        return self.dense

    def construct(self, features):
        return self.dense(self.pool(features))


class SequentialHead(nn.Cell):
    """The same top as one SequentialCell `head` (pooling, then Dense as `head.1`: MobileNetV2's MobileNetV2Head
    in r1.3 and r1.4)."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.head = nn.SequentialCell([GlobalAveragePool(), _dense(in_channels, num_classes)])

    def pooling(self) -> nn.Cell:
        return self.head[0]

    def dense_layer(self) -> nn.Dense:
        return self.head[1]

    def construct(self, features):
        return self.head(features)


class WithHead(nn.Cell):
    """A feature extractor followed by a ClassifierHead sized from its `out_channels`, keeping both parts'
    parameter names unprefixed (as the model zoo's full networks have them)."""

    def __init__(self, backbone: nn.Cell, num_classes: int, head_type: type[nn.Cell] | None = None) -> None:
        super().__init__(auto_prefix=False)
        self.backbone = backbone
        chosen = head_type or getattr(backbone, "head_type", None) or ClassifierHead  # the zoo's names
        self.head = chosen(num_classes, feature_channels(backbone))

    def construct(self, x):
        return self.head(self.backbone(x))
