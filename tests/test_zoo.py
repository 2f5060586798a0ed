"""The built-in architectures against the model zoo: parameter names and shapes with and without the top against
layouts derived by running the zoo's own definitions (tests/data/zoo_layouts, with the commit they came from),
strict loads of checkpoints in the official layouts through the hub loader, the feature map at each
architecture's default input size, an unsupported model-name and each refused zoo branch refused before any
download, and a short fine-tune through the entrypoint, on images and on cached features, for one network of each
family."""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from conftest import job_environment
from contract.models import BUILT_IN, REFUSED_NAMES, unsupported
from job import hub
from job.config import load_settings
from job.errors import BadInput
from job.hub.publish import publish
from job.models import ARCHITECTURES, create_network
from job.preflight import hub_descriptor, with_image_size
from job.models.heads import WithHead

LAYOUTS = Path(__file__).parent / "data" / "zoo_layouts"


@dataclass(frozen=True)
class Zoo:
    """What one built-in model-name must reproduce."""

    name: str  # the hub model-name
    branches: tuple[str, ...]  # zoo branches with a stored layout, tests/data/zoo_layouts/<name>-<branch>.json
    top: str  # the full network's classifier weight, as the zoo names it (on the first branch)
    feature_shape: tuple[int, ...]  # the backbone's output for one image at the default input size
    tiny_size: int = 0  # trained through the entrypoint at this FT_IMAGE_SIZE (one network per family); 0: not
    epochs: int = 3  # of that training, from random weights, with
    lr: float = 0.005  # its peak learning rate
    cached: bool = False  # trained on cached features too: one network per kind of top (pooling and Dense)
    layout: str = ""  # where one model-name has several variants: the stored layouts' name (else the model-name)
    options: dict = field(default_factory=dict)  # its build arguments (hub.load reads them off a checkpoint)
    skipped: str = ""  # parameters (a name prefix) the zoo's top-less network builds but never runs, left out here

    def backbone(self, zoo: dict) -> dict[str, list[int]]:
        """The layout expected without the top: the zoo's, less what it builds and skips."""
        return {
            name: shape
            for name, shape in zoo["backbone"].items()
            if not (self.skipped and name.startswith(self.skipped))
        }

    @property
    def stored(self) -> str:
        """The name of the stored layouts, tests/data/zoo_layouts/<stored>-<branch>.json."""
        return self.layout or self.name


# one model-name, three layouts (hub.load reads the variant off the checkpoint)
VGG16 = Zoo("vgg16", ("r1.10",), "classifier.6.weight", (1, 512, 7, 7), skipped="classifier.")
CASES = [
    Zoo(
        "mobilenetv2", ("r1.3", "r1.10"), "head.1.weight", (1, 1280, 7, 7), tiny_size=32, epochs=6, lr=0.01, cached=True
    ),
    Zoo("resnet18", ("r1.10",), "end_point.weight", (1, 512, 7, 7), tiny_size=32, cached=True),
    Zoo("resnet34", ("r1.10",), "end_point.weight", (1, 512, 7, 7)),
    Zoo("resnet50", ("r1.10",), "end_point.weight", (1, 2048, 7, 7), tiny_size=32),
    Zoo("resnet101", ("r1.10",), "end_point.weight", (1, 2048, 7, 7)),
    Zoo("resnet152", ("r1.10",), "end_point.weight", (1, 2048, 7, 7)),
    Zoo("densenet121", ("r1.10",), "head.fc.weight", (1, 1024, 7, 7), tiny_size=32, cached=True),
    replace(VGG16),
    # trained with batch norm: the plain stack from random weights learns too slowly for a short test
    replace(VGG16, layout="vgg16_bn", options={"batch_norm": True}, tiny_size=32, epochs=4, lr=0.01),
    replace(VGG16, layout="vgg16_cifar10", options={"batch_norm": True}),
    Zoo("inceptionv3", ("r1.10",), "logits.fc.weight", (1, 2048, 8, 8), tiny_size=75, cached=True),
    Zoo(
        "mobilenetv3_large", ("r1.10",), "output.weight", (1, 1280, 1, 1), tiny_size=32, epochs=6, lr=0.01, cached=True
    ),
    Zoo("resnext50", ("r1.10",), "head.fc.weight", (1, 2048, 7, 7), tiny_size=32),
]
LAYOUT_CASES = [pytest.param(case, branch, id=f"{case.stored}-{branch}") for case in CASES for branch in case.branches]
TRAINED = [pytest.param(case, id=case.name) for case in CASES if case.tiny_size]
CACHED = [pytest.param(case, id=case.name) for case in CASES if case.cached]
# (model-name, branch, the reason given): the zoo branches refused per architecture and the refused model-names
REFUSED = [
    pytest.param(name, branch, f"hub model-name '{name}' of {branch}: {reason}", id=f"{name}-{branch}")
    for name, architecture in ARCHITECTURES.items()
    for branch, reason in architecture.refused_branches.items()
] + [pytest.param(name, "r1.10", unsupported(name), id=name) for name in REFUSED_NAMES]


def _zoo(name: str, branch: str) -> dict:
    return json.loads((LAYOUTS / f"{name}-{branch}.json").read_text())


def _layout(network) -> dict[str, list[int]]:
    return {parameter.name: list(parameter.shape) for parameter in network.get_parameters()}


def _official_checkpoint(path: Path, layout: dict[str, list[int]], seed: int = 0) -> Path:
    """A checkpoint with a zoo layout's names and shapes (values random), as the hub publishes one."""
    generator = np.random.default_rng(seed)
    ms.save_checkpoint(
        [
            {"name": name, "data": ms.Tensor(generator.standard_normal(shape).astype(np.float32) * 0.01)}
            for name, shape in layout.items()
        ],
        str(path),
    )
    return path


def test_every_built_in_model_name_has_a_network_and_a_case():
    # GoogleNet, the first, has its own tests (test_googlenet.py)
    assert set(ARCHITECTURES) == set(BUILT_IN) == {"googlenet"} | {case.name for case in CASES}


@pytest.mark.parametrize(("case", "branch"), LAYOUT_CASES)
def test_the_layout_is_the_model_zoos(case, branch):
    zoo = _zoo(case.stored, branch)
    assert zoo["source"].startswith(f"mindspore-ai/models {branch} (")
    arguments = {"num_classes": zoo["num_classes"], "zoo_branch": branch, **case.options}
    full = _layout(create_network(case.name, include_top=True, **arguments))
    assert full == zoo["full"] and list(full) == list(zoo["full"])  # names, shapes and order
    assert _layout(create_network(case.name, include_top=False, **arguments)) == case.backbone(zoo)
    assert case.top in _zoo(case.stored, case.branches[0])["full"]
    assert not [name for name in zoo["backbone"] if name not in zoo["full"]]


@pytest.mark.parametrize(("case", "branch"), LAYOUT_CASES)
def test_official_checkpoints_load_strictly_with_and_without_the_top(tmp_path, case, branch):
    zoo = _zoo(case.stored, branch)
    checkpoint = _official_checkpoint(tmp_path / "official.ckpt", zoo["full"])
    stored = hub.read_checkpoint(checkpoint)
    entry = f"mindspore/1.10/{case.name}_imagenet2012"
    # entries of several branches may publish one file: whatever the descriptor says, its names decide the layout
    publish(
        tmp_path / "hub",
        entry,
        case.name,
        checkpoint,
        **{"repo-link": f"<https://gitee.com/mindspore/models/tree/r1.10/{ARCHITECTURES[case.name].source}>"},
    )
    checkpoint.unlink()  # the hub holds a copy (VGG-16's are 537 MB)
    options = {"mirror": str(tmp_path / "hub"), "cache_dir": tmp_path / "cache"}
    full = hub.load(entry, num_classes=str(zoo["num_classes"]), include_top=True, **options)
    backbone = hub.load(entry, include_top=False, **options)
    for network, layout in ((full, zoo["full"]), (backbone, case.backbone(zoo))):
        values = {parameter.name: parameter.asnumpy() for parameter in network.get_parameters()}
        assert list(values) == list(layout)
        for name, value in values.items():
            np.testing.assert_array_equal(value, stored[name].asnumpy())


@pytest.mark.parametrize("case", [pytest.param(case, id=case.stored) for case in CASES])
def test_the_feature_map_at_the_default_input_size(case):
    ms.set_context(mode=ms.GRAPH_MODE)
    backbone = create_network(case.name, include_top=False, **case.options)
    backbone.set_train(False)
    size = ARCHITECTURES[case.name].image_size
    output = backbone(ms.Tensor(np.zeros((1, 3, size, size), dtype=np.float32)))
    assert tuple(output.shape) == case.feature_shape and backbone.out_channels == case.feature_shape[1]


@pytest.mark.parametrize("explicit", [None, "64"])
def test_the_input_size_is_the_architectures_unless_set(tmp_path, explicit):
    checkpoint = tmp_path / "unused.ckpt"
    checkpoint.write_bytes(b"never read")
    for name in dict.fromkeys(case.name for case in CASES):  # one entry per architecture (VGG-16 has two cases)
        publish(tmp_path / "hub", f"tests/1.10/{name}", name, checkpoint)
    environment = {
        "FT_TRAIN_DATA": "unused",
        "FT_EVAL_DATA": "unused",
        "FT_OUTPUT": "unused",
        "FT_HUB_MIRROR": str(tmp_path / "hub"),
        "FT_HUB_CACHE": str(tmp_path / "cache"),
        **({"FT_IMAGE_SIZE": explicit} if explicit else {}),
    }
    sizes = {}
    for name in [case.name for case in CASES]:
        settings = load_settings({**environment, "FT_MODEL": f"tests/1.10/{name}"})
        sizes[name] = with_image_size(settings, hub_descriptor(settings)).image_size
    if explicit:
        assert set(sizes.values()) == {64}
    else:
        assert sizes == {name: ARCHITECTURES[name].image_size for name in sizes}
        assert sizes.get("inceptionv3", 299) == 299 and sizes["resnet50"] == 224
    network_dir = load_settings({**environment, "FT_MODEL": "tests/1.10/resnet50", "FT_HUB_NETWORK_DIR": "/x"})
    assert with_image_size(network_dir, None).image_size == int(explicit or 224)


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
    layout = _zoo("mobilenetv2", "r1.10")["full"]
    publish(
        root, "mindspore/1.10/squeezenet_imagenet2012", "squeezenet", _official_checkpoint(tmp_path / "x.ckpt", layout)
    )
    with pytest.raises(BadInput, match="no built-in network for hub model-name 'squeezenet'.*googlenet, .*mobilenetv2"):
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


@pytest.mark.parametrize(("name", "branch", "reason"), REFUSED)
def test_a_refused_branch_is_refused_before_any_download(recording_mirror, tmp_path, name, branch, reason):
    root, url, requests = recording_mirror
    source = ARCHITECTURES[name].source if name in ARCHITECTURES else "official/cv/" + name
    entry = f"mindspore/{branch[1:]}/{name}_imagenet2012"
    publish(
        root,
        entry,
        name,
        _official_checkpoint(tmp_path / "x.ckpt", {"weight": [2]}),
        **{"repo-link": f"<https://gitee.com/mindspore/models/tree/{branch}/{source}>"},
    )
    with pytest.raises(BadInput, match=re.escape(reason)):
        hub.load(entry, include_top=False, mirror=url, cache_dir=tmp_path / "c")
    settings = load_settings(
        {"FT_MODEL": entry, "FT_HUB_MIRROR": url, "FT_TRAIN_DATA": "x", "FT_EVAL_DATA": "x", "FT_OUTPUT": "x"}
    )
    with pytest.raises(BadInput, match=re.escape(reason)):  # what --check and a run read first
        hub_descriptor(settings.model_copy(update={"hub_cache": tmp_path / "check-cache"}))
    assert requests and not [path for path in requests if path.endswith(".ckpt")]  # the descriptor only


def test_inceptionv3_gives_the_auxiliary_logits_in_training_mode_only():
    ms.set_context(mode=ms.GRAPH_MODE)
    network = create_network("inceptionv3", num_classes=5)
    images = ms.Tensor(np.zeros((2, 3, 299, 299), dtype=np.float32))
    network.set_train(True)
    logits, aux_logits = network(images)
    assert logits.shape == aux_logits.shape == (2, 5)
    network.set_train(False)
    logits = network(images)
    assert isinstance(logits, ms.Tensor) and logits.shape == (2, 5)
    # a fine-tuned network (the backbone and a new top) has the full network's layout without aux_logits
    fine_tuned = WithHead(create_network("inceptionv3", include_top=False), 5)
    assert _layout(fine_tuned) == _layout(create_network("inceptionv3", num_classes=5, is_training=False))


@pytest.fixture(scope="module")
def zoo_hub(tmp_path_factory):
    """A hub with, per trained case, a freshly initialised full network (1000 classes) in its newest layout;
    returns the hub root and the entry id for a model-name."""
    base = tmp_path_factory.mktemp("zoo-hub")
    for case in CASES:
        if case.tiny_size:
            checkpoint = base / f"{case.name}.ckpt"
            network = create_network(
                case.name, num_classes=1000, include_top=True, zoo_branch=case.branches[-1], **case.options
            )
            ms.save_checkpoint(network, str(checkpoint))
            publish(base / "hub", f"tests/1.10/{case.name}", case.name, checkpoint)
    return base / "hub", lambda name: f"tests/1.10/{name}"


def _fine_tune(zoo_hub, case: Zoo, digits_data, output: Path, **settings: str) -> subprocess.CompletedProcess:
    root, entry = zoo_hub
    train, evaluation = digits_data
    quick = {"FT_IMAGE_SIZE": str(case.tiny_size), "FT_BATCH_SIZE": "16", "FT_EVAL_EVERY": "0", "FT_SEED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "job"],
        env=job_environment(
            FT_MODEL=entry(case.name),
            FT_HUB_MIRROR=str(root),
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
@pytest.mark.parametrize("case", TRAINED)
def test_a_short_fine_tune_learns(zoo_hub, case, digits_data, tmp_path):
    result = _fine_tune(
        zoo_hub, case, digits_data, tmp_path / "out", FT_EPOCHS=str(case.epochs), FT_LR_MAX=str(case.lr)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["top1"] >= 0.8  # three digit classes from a random network: chance is 0.33


@pytest.mark.slow
@pytest.mark.parametrize("case", CACHED)
def test_a_frozen_backbone_trains_on_cached_features(zoo_hub, case, digits_data, tmp_path):
    result = _fine_tune(
        zoo_hub, case, digits_data, tmp_path / "out", FT_EPOCHS="1", FT_FREEZE_BACKBONE="true", FT_AUGMENT="false"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.strip().splitlines()[:-1]]
    cached = [event for event in events if event["event"] == "features_cached"]
    assert cached and cached[0]["width"] == case.feature_shape[1]
