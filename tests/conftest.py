"""Shared fixtures: small real data sets and a small real hub built on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from job.config import DeviceTarget
from job.device import prepare_process

prepare_process(DeviceTarget.CPU)  # before any test imports MindSpore

HUB_ID = "tests/1.0/googlenet_tiny"


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory) -> tuple[Path, Path]:
    """Digits 0-2 as 32x32 RGB PNGs: (train root, eval root)."""
    from job.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("digits"), [0, 1, 2], image_size=32)


@pytest.fixture(scope="session")
def zoo_checkpoint(tmp_path_factory) -> Path:
    """A full GoogleNet (with its 10-class top) checkpoint in the model zoo's layout, freshly initialised."""
    import mindspore as ms

    from job.models.googlenet import googlenet

    path = tmp_path_factory.mktemp("zoo") / "googlenet_full.ckpt"
    ms.save_checkpoint(googlenet(num_classes=10, include_top=True), str(path))
    return path


@pytest.fixture()
def hub_root(tmp_path, zoo_checkpoint) -> Path:
    """A hub directory (mshub_res/assets/<id>.md + checkpoint) holding HUB_ID."""
    from job.hub.publish import publish

    root = tmp_path / "hub"
    publish(root, HUB_ID, "googlenet", zoo_checkpoint)
    return root


def job_environment(**settings: str) -> dict[str, str]:
    """The current environment without FT_* variables, plus the given ones."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("FT_")}
    return {**base, **settings}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """SeaweedFS on free 127.0.0.1 ports for the whole session; AWS_* variables point boto3 at it."""
    from s3server import SeaweedServer

    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    saved = {key: os.environ.get(key) for key in server.environment}
    os.environ.update(server.environment)
    yield server
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(params=["local", "s3"])
def output_location(request, tmp_path) -> str:
    """An empty output location: a local directory, or a prefix in a fresh bucket of the real S3 server."""
    if request.param == "local":
        return str(tmp_path / "output")
    server = request.getfixturevalue("s3_server")
    return f"s3://{server.new_bucket()}/runs/one"
