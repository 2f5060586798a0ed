"""Hub descriptors: the real published files, and malformed ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from job.errors import BadInput
from job.hub.descriptor import Asset, parse_descriptor, render_descriptor

REAL_ASSETS = Path(__file__).resolve().parents[2] / "shared" / "hub-assets" / "mindspore" / "1.6"
EMBEDDED_COPY = Path(__file__).parent / "data" / "hub-assets"


def _real(name: str) -> str:
    for folder in (REAL_ASSETS, EMBEDDED_COPY):
        if (folder / name).exists():
            return (folder / name).read_text(encoding="utf-8")
    pytest.fail(f"real descriptor {name} not found")


@pytest.mark.parametrize(
    "name, sha256, link_end",
    [
        (
            "googlenet_cifar10.md",
            "b2f7fe14782a3ab88ad3534ed5f419b4bbc3b477706258bd6ed8f90f529775e7",
            "googlenet_ascend_v160_cifar10_official_cv_acc92.53.ckpt",
        ),
        (
            "googlenet_imagenet2012.md",
            "c35b3baff0b4413988a95fa3691733a58d1695b66bf2ae47030c41e539885240",
            "googlenet_ascend_v160_imagenet2012_official_cv_top1acc72.97_top5acc90.97.ckpt",
        ),
    ],
)
def test_real_descriptors_parse(name, sha256, link_end):
    descriptor = parse_descriptor(_real(name), name)
    assert descriptor.model_name == "googlenet"
    assert descriptor.repo_link == "https://gitee.com/mindspore/models/tree/r1.6/official/cv/googlenet"
    asset = descriptor.asset("ckpt")
    assert asset.sha256 == sha256
    assert asset.link.startswith("https://download.mindspore.cn/") and asset.link.endswith(link_end)
    assert asset.file_name == link_end


def test_rendered_descriptor_round_trips():
    asset = Asset("ckpt", "model.ckpt", "a" * 64)
    descriptor = parse_descriptor(render_descriptor("googlenet", [asset], evaluation="top1 0.9"), "rendered")
    assert descriptor.assets == (asset,)
    assert descriptor.fields["evaluation"] == "top1 0.9"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("# no front matter at all\n", "no front matter"),
        ("---\nmodel-name: [unclosed\n---\n", "not valid YAML"),
        ("---\n- just\n- a list\n---\n", "not a mapping"),
        ("---\nasset: []\n---\n", "'model-name' is missing"),
        ("---\nmodel-name: g\nasset:\n-\n    file-format: ckpt\n    asset-link: x.ckpt\n---\n", "lacks asset-sha256"),
        (
            "---\nmodel-name: g\nasset:\n-\n    file-format: ckpt\n    asset-link: x.ckpt\n"
            "    asset-sha256: 12ab\n---\n",
            "invalid asset-sha256",
        ),
        ("---\nmodel-name: g\nasset: nope\n---\n", "'asset' must be a list"),
    ],
)
def test_malformed_descriptors_are_refused_clearly(text, problem):
    with pytest.raises(BadInput, match="malformed hub descriptor") as caught:
        parse_descriptor(text, "bad.md")
    assert problem in str(caught.value)


def test_missing_checkpoint_asset_is_reported():
    descriptor = parse_descriptor(render_descriptor("g", [Asset("mindir", "m.mindir", "b" * 64)]), "x")
    with pytest.raises(BadInput, match="no ckpt asset .*lists: mindir"):
        descriptor.asset("ckpt")
