"""The hub loader on a small hub built by the tests: ids, URLs, mirrors, cache, offline use and sha256."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import mindspore as ms
import numpy as np
import pytest

from conftest import HUB_ID
from job import hub
from job.errors import BadInput, Unavailable
from job.storage.digest import sha256_of
from job.hub.descriptor import Asset, parse_descriptor, render_descriptor


@pytest.fixture()
def http_mirror(hub_root):
    """The hub directory served over HTTP on 127.0.0.1; yields (base URL, request log)."""
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(hub_root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def _values(network) -> dict[str, np.ndarray]:
    return {parameter.name: parameter.asnumpy() for parameter in network.get_parameters()}


def test_backbone_without_top_loads_a_full_checkpoint(hub_root, tmp_path, zoo_checkpoint):
    backbone = hub.load(HUB_ID, include_top=False, mirror=str(hub_root), cache_dir=tmp_path / "cache")
    stored = ms.load_checkpoint(str(zoo_checkpoint))
    loaded = _values(backbone)
    assert len(loaded) == 285 and not any(name.startswith("classifier") for name in loaded)
    for name, value in loaded.items():
        np.testing.assert_array_equal(value, stored[name].asnumpy())


def test_full_network_with_its_top_loads(hub_root, tmp_path):
    network = hub.load(HUB_ID, num_classes=10, include_top=True, mirror=str(hub_root), cache_dir=tmp_path / "c")
    assert len(_values(network)) == 287


def test_wrong_class_count_for_the_top_is_a_clear_error(hub_root, tmp_path):
    with pytest.raises(BadInput, match="does not fit the network"):
        hub.load(HUB_ID, num_classes=26, include_top=True, mirror=str(hub_root), cache_dir=tmp_path / "c")


def test_http_mirror_then_cache_only(http_mirror, tmp_path):
    base, requests = http_mirror
    cache = tmp_path / "cache"
    entry = hub.resolve(HUB_ID, mirror=base, cache_dir=cache)
    assert entry.checkpoint.is_file() and sha256_of(entry.checkpoint) == entry.descriptor.asset("ckpt").sha256
    assert len(requests) == 2  # the descriptor and the checkpoint
    again = hub.resolve(HUB_ID, mirror=base, cache_dir=cache)
    assert again.checkpoint == entry.checkpoint and len(requests) == 2  # no network when the cache is complete
    offline = hub.resolve(HUB_ID, mirror="http://127.0.0.1:9/unreachable", cache_dir=cache, offline=True)
    assert offline.checkpoint == entry.checkpoint


def test_descriptor_url_and_local_descriptor_path(http_mirror, hub_root, tmp_path):
    base, _ = http_mirror
    by_url = hub.resolve(f"{base}/mshub_res/assets/{HUB_ID}.md", cache_dir=tmp_path / "a")
    by_path = hub.resolve(str(hub_root / "mshub_res" / "assets" / f"{HUB_ID}.md"), cache_dir=tmp_path / "b")
    by_file_url = hub.resolve(f"file://{hub_root}/mshub_res/assets/{HUB_ID}.md", cache_dir=tmp_path / "c")
    assert sha256_of(by_url.checkpoint) == sha256_of(by_path.checkpoint) == sha256_of(by_file_url.checkpoint)


def test_offline_with_an_empty_cache_is_refused(hub_root, tmp_path):
    with pytest.raises(BadInput, match="offline mode is on"):
        hub.resolve(HUB_ID, mirror=str(hub_root), cache_dir=tmp_path / "empty", offline=True)


def test_unknown_id_and_bad_names(hub_root, tmp_path):
    with pytest.raises(BadInput, match="unknown hub model 'tests/1.0/missing'"):
        hub.resolve("tests/1.0/missing", mirror=str(hub_root), cache_dir=tmp_path)
    with pytest.raises(BadInput, match="is not a hub model id"):
        hub.resolve("googlenet", mirror=str(hub_root), cache_dir=tmp_path)
    with pytest.raises(BadInput, match="does not exist; check FT_MODEL"):
        hub.resolve(str(tmp_path / "absent.md"), cache_dir=tmp_path)


def test_unreachable_mirror_is_retryable(tmp_path):
    with pytest.raises(Unavailable, match="cannot reach"):
        hub.resolve(HUB_ID, mirror="http://127.0.0.1:9", cache_dir=tmp_path)


def test_sha256_mismatch_is_quarantined_and_refused(hub_root, tmp_path):
    descriptor = hub_root / "mshub_res" / "assets" / f"{HUB_ID}.md"
    checkpoint = descriptor.parent / parse_descriptor(descriptor.read_text(), "published").asset("ckpt").link
    checkpoint.write_bytes(checkpoint.read_bytes()[:-100])  # truncated after publishing
    cache = tmp_path / "cache"
    with pytest.raises(BadInput, match=r"sha256 mismatch .*\(quarantined at .*googlenet_tiny-[0-9a-f]{16}\.ckpt\."):
        hub.resolve(HUB_ID, mirror=str(hub_root), cache_dir=cache)
    assert list((cache / "quarantine").iterdir()) and not list((cache / "assets").rglob("*.ckpt"))
    with pytest.raises(BadInput, match="sha256 mismatch"):  # never reused: checked again on every load
        hub.resolve(HUB_ID, mirror=str(hub_root), cache_dir=cache)


def test_corrupted_cache_entry_is_quarantined_and_fetched_again(hub_root, tmp_path):
    cache = tmp_path / "cache"
    entry = hub.resolve(HUB_ID, mirror=str(hub_root), cache_dir=cache)
    entry.checkpoint.chmod(0o600)
    entry.checkpoint.write_bytes(b"corrupted")
    repaired = hub.resolve(HUB_ID, mirror=str(hub_root), cache_dir=cache)
    assert sha256_of(repaired.checkpoint) == entry.descriptor.asset("ckpt").sha256
    assert len(list((cache / "quarantine").iterdir())) == 1


def test_missing_asset_file_and_missing_ckpt_asset(hub_root, tmp_path):
    assets = hub_root / "mshub_res" / "assets" / "tests" / "1.0"
    next(assets.glob("googlenet_tiny-*.ckpt")).unlink()
    with pytest.raises(BadInput, match="listed by the hub descriptor does not exist"):
        hub.resolve(HUB_ID, mirror=str(hub_root), cache_dir=tmp_path / "a")
    (assets / "only_mindir.md").write_text(render_descriptor("googlenet", [Asset("mindir", "m.mindir", "c" * 64)]))
    with pytest.raises(BadInput, match="no ckpt asset"):
        hub.resolve("tests/1.0/only_mindir", mirror=str(hub_root), cache_dir=tmp_path / "b")


def test_unknown_architecture_needs_an_explicit_network_dir(hub_root, tmp_path, zoo_checkpoint):
    from job.hub.publish import publish

    publish(hub_root, "tests/1.0/custom", "customnet", zoo_checkpoint)
    with pytest.raises(BadInput, match="no built-in network for hub model-name 'customnet'.*FT_HUB_NETWORK_DIR"):
        hub.load("tests/1.0/custom", include_top=False, mirror=str(hub_root), cache_dir=tmp_path / "c")
    network_dir = tmp_path / "network"
    network_dir.mkdir()
    (network_dir / "mindspore_hub_conf.py").write_text(
        "from job.models.googlenet import googlenet\n\n"
        "def create_network(name, *args, **kwargs):\n"
        "    assert name == 'customnet'\n"
        "    return googlenet(*args, **kwargs)\n"
    )
    network = hub.load(
        "tests/1.0/custom", include_top=False, mirror=str(hub_root), cache_dir=tmp_path / "c", network_dir=network_dir
    )
    assert len(list(network.get_parameters())) == 285


def test_cache_survives_the_mirror_disappearing(hub_root, tmp_path):
    cache = tmp_path / "cache"
    hub.load(HUB_ID, include_top=False, mirror=str(hub_root), cache_dir=cache)
    shutil.rmtree(hub_root)
    network = hub.load(HUB_ID, include_top=False, mirror=str(hub_root), cache_dir=cache)
    assert len(list(network.get_parameters())) == 285


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    from mindspore import nn

    other = tmp_path / "other.ckpt"
    ms.save_checkpoint(nn.Dense(3, 2), str(other))
    from job.hub.publish import publish

    publish(tmp_path / "hub", "tests/1.0/other", "googlenet", other)
    with pytest.raises(BadInput, match="lacks 285 parameters"):
        hub.load("tests/1.0/other", include_top=False, mirror=str(tmp_path / "hub"), cache_dir=tmp_path / "c")
