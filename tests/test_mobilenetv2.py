"""MobileNetV2 against the model zoo: parameter names and shapes with and without the top against layouts derived
by running the zoo's own definition (tests/data/zoo_layouts, with the commit they came from), strict loads of
checkpoints in the official layouts, the feature map at 224x224, a hub model-name refused before any download,
and a short fine-tune through the entrypoint, on images and on cached features."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from conftest import job_environment
from contract.models import BUILT_IN
from job import hub
from job.errors import BadInput
from job.hub.publish import publish
from job.models import ARCHITECTURES
from job.models.mobilenetv2 import mobilenetv2

LAYOUTS = Path(__file__).parent / "data" / "zoo_layouts"
BRANCHES = ["r1.3", "r1.10"]  # the top's names differ: head.1 (r1.3, r1.4), dense (r1.5 on)
TOPS = {"r1.3": "head.1", "r1.10": "dense"}


def _zoo(branch: str) -> dict:
    return json.loads((LAYOUTS / f"mobilenetv2-{branch}.json").read_text())


def _layout(network) -> dict[str, list[int]]:
    return {parameter.name: list(parameter.shape) for parameter in network.get_parameters()}


def _official_checkpoint(path: Path, branch: str, seed: int = 0) -> Path:
    """A checkpoint with the zoo's names and shapes for `branch` (values random), as the hub publishes one."""
    generator = np.random.default_rng(seed)
    ms.save_checkpoint(
        [
            {"name": name, "data": ms.Tensor(generator.standard_normal(shape).astype(np.float32) * 0.01)}
            for name, shape in _zoo(branch)["full"].items()
        ],
        str(path),
    )
    return path


def test_every_built_in_model_name_has_a_network():
    assert set(ARCHITECTURES) == set(BUILT_IN)


@pytest.mark.parametrize("branch", BRANCHES)
def test_the_layout_is_the_model_zoos(branch):
    zoo = _zoo(branch)
    assert zoo["source"].startswith(f"mindspore-ai/models {branch} (")
    full = _layout(mobilenetv2(zoo["num_classes"], include_top=True, zoo_branch=branch))
    assert full == zoo["full"] and list(full) == list(zoo["full"])  # names, shapes and order
    assert len(full) == 262 and f"{TOPS[branch]}.weight" in full
    assert _layout(mobilenetv2(include_top=False)) == zoo["backbone"]
    assert len(zoo["backbone"]) == 260 and max(int(name.split(".")[1]) for name in zoo["backbone"]) == 18


@pytest.mark.parametrize("branch", BRANCHES)
def test_official_checkpoints_load_strictly_with_and_without_the_top(tmp_path, branch):
    checkpoint = _official_checkpoint(tmp_path / "official.ckpt", branch)
    stored = ms.load_checkpoint(str(checkpoint))
    # the hub's 1.3 and 1.10 entries publish one file: whatever the descriptor says, its names decide the top
    publish(
        tmp_path / "hub",
        "mindspore/1.10/mobilenetv2_imagenet2012",
        "mobilenetv2",
        checkpoint,
        **{"repo-link": "<https://gitee.com/mindspore/models/tree/r1.10/official/cv/mobilenetv2>"},
    )
    options = {"mirror": str(tmp_path / "hub"), "cache_dir": tmp_path / "cache"}
    full = hub.load("mindspore/1.10/mobilenetv2_imagenet2012", num_classes="1000", include_top=True, **options)
    backbone = hub.load("mindspore/1.10/mobilenetv2_imagenet2012", include_top=False, **options)
    for network, count in ((full, 262), (backbone, 260)):
        values = {parameter.name: parameter.asnumpy() for parameter in network.get_parameters()}
        assert len(values) == count
        for name, value in values.items():
            np.testing.assert_array_equal(value, stored[name].asnumpy())


def test_the_feature_map_at_the_default_input_size():
    ms.set_context(mode=ms.GRAPH_MODE)
    backbone = mobilenetv2(include_top=False)
    backbone.set_train(False)
    output = backbone(ms.Tensor(np.zeros((1, 3, 224, 224), dtype=np.float32)))
    assert tuple(output.shape) == (1, 1280, 7, 7) and backbone.out_channels == 1280


@pytest.fixture()
def recording_mirror(tmp_path):
    """A hub directory served over HTTP; yields (root, base URL, request log)."""
    root, requests = tmp_path / "hub", []
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_an_unsupported_model_name_is_refused_before_any_download(recording_mirror, tmp_path, digits_data):
    root, url, requests = recording_mirror
    publish(
        root, "mindspore/1.10/squeezenet_imagenet2012", "squeezenet", _official_checkpoint(tmp_path / "x.ckpt", "r1.10")
    )
    with pytest.raises(BadInput, match="no built-in network for hub model-name 'squeezenet'.*googlenet, mobilenetv2"):
        hub.load("mindspore/1.10/squeezenet_imagenet2012", include_top=False, mirror=url, cache_dir=tmp_path / "c")
    assert requests and not [path for path in requests if path.endswith(".ckpt")]  # the descriptor only
    checked = subprocess.run(
        [sys.executable, "-m", "job", "--check"],
        env=job_environment(
            FT_MODEL="mindspore/1.10/squeezenet_imagenet2012",
            FT_HUB_MIRROR=url,
            FT_HUB_CACHE=str(tmp_path / "check-cache"),
            FT_TRAIN_DATA=str(digits_data[0]),
            FT_EVAL_DATA=str(digits_data[1]),
            FT_OUTPUT=str(tmp_path / "out"),
            FT_BATCH_SIZE="8",
        ),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert checked.returncode == 2 and "no built-in network for hub model-name 'squeezenet'" in checked.stderr
    assert not [path for path in requests if path.endswith(".ckpt")]


@pytest.fixture(scope="module")
def mobilenet_hub(tmp_path_factory) -> Path:
    """A hub entry holding a freshly initialised MobileNetV2 (1000 classes) in the r1.10 layout."""
    base = tmp_path_factory.mktemp("mobilenet-hub")
    ms.save_checkpoint(mobilenetv2(1000, include_top=True, zoo_branch="r1.10"), str(base / "mobilenetv2.ckpt"))
    publish(base / "hub", "tests/1.10/mobilenetv2", "mobilenetv2", base / "mobilenetv2.ckpt")
    return base / "hub"


def _fine_tune(hub_root: Path, digits_data, output: Path, **settings: str) -> subprocess.CompletedProcess:
    train, evaluation = digits_data
    quick = {"FT_IMAGE_SIZE": "32", "FT_BATCH_SIZE": "16", "FT_EVAL_EVERY": "0", "FT_SEED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "job"],
        env=job_environment(
            FT_MODEL="tests/1.10/mobilenetv2",
            FT_HUB_MIRROR=str(hub_root),
            FT_HUB_CACHE=str(output.parent / "cache"),
            FT_TRAIN_DATA=str(train),
            FT_EVAL_DATA=str(evaluation),
            FT_OUTPUT=str(output),
            FT_EXPORT_MINDIR="false",
            **{**quick, **settings},
        ),
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )


@pytest.mark.slow
def test_a_short_fine_tune_learns(mobilenet_hub, digits_data, tmp_path):
    result = _fine_tune(mobilenet_hub, digits_data, tmp_path / "out", FT_EPOCHS="6", FT_LR_MAX="0.01")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["top1"] >= 0.8  # three digit classes from a random MobileNetV2: chance is 0.33


@pytest.mark.slow
def test_a_frozen_backbone_trains_on_cached_features(mobilenet_hub, digits_data, tmp_path):
    result = _fine_tune(
        mobilenet_hub, digits_data, tmp_path / "out", FT_EPOCHS="3", FT_FREEZE_BACKBONE="true", FT_AUGMENT="false"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.strip().splitlines()[:-1]]
    cached = [event for event in events if event["event"] == "features_cached"]
    assert cached and cached[0]["width"] == 1280
