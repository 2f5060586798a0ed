"""Derive the model zoo's parameter layouts (name -> shape) by running the zoo's own network definitions under
the installed MindSpore, for the layout tests. Not run by the tests: its output is stored next to it.

    python tests/data/zoo_layouts/derive.py ZOO_CHECKOUT BRANCH

ZOO_CHECKOUT is a git clone of the MindSpore model zoo (mindspore-ai/models); BRANCH the hub entries' branch
(e.g. r1.10). Each architecture's source file is read from that branch with `git show`, imported on its own,
and its network built with and without the top, as its mindspore_hub_conf.py builds it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name: (source file in the zoo, how the hub conf builds the full network and the backbone)
ARCHITECTURES = {
    "mobilenetv2": (
        "official/cv/mobilenetv2/src/mobilenetV2.py",
        lambda zoo, num_classes: zoo.mobilenet_v2(
            (backbone := zoo.MobileNetV2Backbone()), zoo.MobileNetV2Head(backbone.out_channels, num_classes)
        ),
        lambda zoo: zoo.MobileNetV2Backbone(),
    ),
}
NUM_CLASSES = 1000


def _module(checkout: Path, branch: str, source: str):
    text = subprocess.run(
        ["git", "-C", str(checkout), "show", f"{branch}:{source}"], capture_output=True, text=True, check=True
    ).stdout
    folder = Path(tempfile.mkdtemp())
    path = folder / Path(source).name
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layout(network) -> dict[str, list[int]]:
    return {parameter.name: list(parameter.shape) for parameter in network.get_parameters()}


def main(checkout: Path, branch: str) -> None:
    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", branch], capture_output=True, text=True, check=True
    ).stdout.strip()
    import mindspore

    for name, (source, full, backbone) in ARCHITECTURES.items():
        zoo = _module(checkout, branch, source)
        document = {
            "source": f"mindspore-ai/models {branch} ({commit}) {source}",
            "mindspore": mindspore.__version__,
            "num_classes": NUM_CLASSES,
            "full": _layout(full(zoo, NUM_CLASSES)),
            "backbone": _layout(backbone(zoo)),
        }
        (HERE / f"{name}-{branch}.json").write_text(json.dumps(document, indent=1) + "\n")
        print(f"{name}: {len(document['full'])} parameters with the top, {len(document['backbone'])} without")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
