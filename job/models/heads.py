"""The classification top shared by the architectures: global average pooling and one Dense layer, named as in
each network's model zoo definition, on any backbone that says how many channels it gives (`out_channels`)."""

from __future__ import annotations

from collections.abc import Callable

from mindspore import Parameter, nn, ops
from mindspore.common.initializer import TruncatedNormal, initializer

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


class PointwiseDense(nn.Cell):
    """A Dense keeping its weight in a 1x1 convolution's shape (out, in, 1, 1), for a zoo top that is such a
    convolution on a 1x1 map: its checkpoint loads as it is, and it takes pooled (N, in) features."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.weight = Parameter(initializer(TruncatedNormal(0.02), (out_channels, in_channels, 1, 1)), name="weight")
        self.bias = Parameter(initializer(TruncatedNormal(0.02), (out_channels,)), name="bias")

    def construct(self, features):
        return ops.dense(features, self.weight.squeeze((2, 3)), self.bias)


class PooledDenseHead(nn.Cell):
    """The usual top: mean over H and W, flatten, and one Dense(in_channels, num_classes) under the name the
    architecture's zoo definition gives it (`make_dense(in_channels, num_classes)` builds it)."""

    def __init__(
        self, num_classes: int, in_channels: int, dense_name: str, make_dense: Callable[[int, int], nn.Cell] = _dense
    ) -> None:
        super().__init__()
        self.pool = GlobalAveragePool()
        self.dense_name = dense_name
        setattr(self, dense_name, make_dense(in_channels, num_classes))

    def pooling(self) -> nn.Cell:
        return self.pool

    def dense_layer(self) -> nn.Dense:
        return getattr(self, self.dense_name)

    def construct(self, features):
        return self.dense_layer()(self.pool(features))


class ClassifierHead(PooledDenseHead):
    """GoogleNet's top (and the default): the Dense is `classifier`."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__(num_classes, in_channels, "classifier")


class DenseHead(PooledDenseHead):
    """MobileNetV2's MobileNetV2Head from r1.5 on: the Dense is `dense`."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__(num_classes, in_channels, "dense")


class EndPointHead(PooledDenseHead):
    """ResNet's top: the Dense is `end_point`."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__(num_classes, in_channels, "end_point")


class OutputHead(PooledDenseHead):
    """MobileNetV3's top: `output`, in the zoo a 1x1 convolution (with bias) on the pooled 1x1 map, here a
    PointwiseDense with its weight shape."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__(num_classes, in_channels, "output", PointwiseDense)


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


class FcHead(nn.Cell):
    """The same top as a cell `head` whose Dense is `fc`, i.e. `head.fc` (DenseNet's and ResNeXt's CommonHead,
    the attribute `head` of the zoo's networks); subclasses name that cell otherwise (`cell_name`)."""

    cell_name = "head"

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        setattr(self, self.cell_name, PooledDenseHead(num_classes, in_channels, "fc"))

    def top(self) -> PooledDenseHead:
        return getattr(self, self.cell_name)

    def pooling(self) -> nn.Cell:
        return self.top().pooling()

    def dense_layer(self) -> nn.Dense:
        return self.top().dense_layer()

    def construct(self, features):
        return self.top()(features)


class LogitsHead(FcHead):
    """InceptionV3's top: `logits.fc` (the zoo's Logits cell)."""

    cell_name = "logits"


class UnderBackbone(nn.Cell):
    """Features kept as the attribute `backbone` (names `backbone.*`) with the top `head.fc`: the zoo's
    ImageClassificationNetwork form (DenseNet-121, ResNeXt-50) without its head."""

    head_type = FcHead

    def __init__(self, features: nn.Cell, out_channels: int) -> None:
        super().__init__()
        self.backbone = features
        self.out_channels = out_channels

    def construct(self, x):
        return self.backbone(x)


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
