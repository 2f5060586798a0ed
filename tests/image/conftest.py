"""The built images, for the tests that run them (`make image-test` builds them and passes --image)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--image", default=None, help="the CPU image to test (its GPU twin is <image>-gpu)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--image"):
        return
    skip = pytest.mark.skip(reason="tests/image run built images: make image-test (or pytest tests/image --image X)")
    for item in items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def engine():
    from launcher.engine import find_engine

    return find_engine()


@pytest.fixture(scope="session")
def cpu_image(request, engine) -> str:
    image = request.config.getoption("--image")
    assert engine.image_exists(image), f"{image} is not built: make image-test"
    return image


@pytest.fixture(scope="session")
def gpu_image(request, engine) -> str:
    from image.build import device_tag

    image = device_tag(request.config.getoption("--image"), "gpu")
    assert engine.image_exists(image), f"{image} is not built: make image-test"
    return image


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """The demo's data (digits 5-9) and hub entry (GoogleNet pretrained on digits 0-4), built on the host."""
    from job.demo import digits_data, publish_pretrained

    root = tmp_path_factory.mktemp("demo")
    publish_pretrained(root, root / "hub")
    digits_data(root, [5, 6, 7, 8, 9])
    return root
