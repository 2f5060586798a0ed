"""GoogleNet's parameter names and shapes against the model zoo's layout, derived here from its block table."""

from __future__ import annotations

from job.models.googlenet import googlenet

# (name, in_channels, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5" (a 3x3 conv in the zoo), pool projection)
INCEPTION_TABLE = [
    ("block3a", 192, 64, 96, 128, 16, 32, 32),
    ("block3b", 256, 128, 128, 192, 32, 96, 64),
    ("block4a", 480, 192, 96, 208, 16, 48, 64),
    ("block4b", 512, 160, 112, 224, 24, 64, 64),
    ("block4c", 512, 128, 128, 256, 24, 64, 64),
    ("block4d", 512, 112, 144, 288, 32, 64, 64),
    ("block4e", 528, 256, 160, 320, 32, 128, 128),
    ("block5a", 832, 256, 160, 320, 32, 128, 128),
    ("block5b", 832, 384, 192, 384, 48, 128, 128),
]


def _conv_block(prefix: str, in_channels: int, out_channels: int, kernel: int) -> dict[str, tuple]:
    return {
        f"{prefix}.conv.weight": (out_channels, in_channels, kernel, kernel),
        **{f"{prefix}.bn.{name}": (out_channels,) for name in ("gamma", "beta", "moving_mean", "moving_variance")},
    }


def model_zoo_layout(num_classes: int, include_top: bool) -> dict[str, tuple]:
    layout = {**_conv_block("conv1", 3, 64, 7), **_conv_block("conv2", 64, 64, 1), **_conv_block("conv3", 64, 192, 3)}
    for name, cin, n1, r3, n3, r5, n5, pool in INCEPTION_TABLE:
        layout.update(_conv_block(f"{name}.b1", cin, n1, 1))
        layout.update(_conv_block(f"{name}.b2.0", cin, r3, 1))
        layout.update(_conv_block(f"{name}.b2.1", r3, n3, 3))
        layout.update(_conv_block(f"{name}.b3.0", cin, r5, 1))
        layout.update(_conv_block(f"{name}.b3.1", r5, n5, 3))
        layout.update(_conv_block(f"{name}.b4", cin, pool, 1))
    if include_top:
        layout.update({"classifier.weight": (num_classes, 1024), "classifier.bias": (num_classes,)})
    return layout


def _layout(network) -> dict[str, tuple]:
    return {parameter.name: tuple(parameter.shape) for parameter in network.get_parameters()}


def test_with_top_matches_the_model_zoo():
    expected = model_zoo_layout(10, include_top=True)
    assert len(expected) == 287
    assert _layout(googlenet(num_classes=10, include_top=True)) == expected


def test_without_top_matches_the_model_zoo_backbone():
    expected = model_zoo_layout(10, include_top=False)
    assert len(expected) == 285
    assert _layout(googlenet(include_top=False)) == expected


def test_feature_map_shape_without_top():
    import mindspore as ms
    import numpy as np

    ms.set_context(mode=ms.GRAPH_MODE)
    features = googlenet(include_top=False)
    features.set_train(False)
    output = features(ms.Tensor(np.zeros((2, 3, 64, 64), dtype=np.float32)))
    assert tuple(output.shape) == (2, 1024, 2, 2)
