"""The launcher alone installs on Python 3.10 to 3.13: its dependencies resolve to wheels for each (pip's own
resolver against the package index, nothing installed), and its code (with contract/) type-checks for 3.10,
the oldest (`make lint` runs mypy --python-version 3.10 on it; ruff's target is py310)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains with MindSpore or runs a heavy tool: not in make test-fast

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_declared_python_range_is_the_launchers():
    assert PROJECT["requires-python"] == ">=3.10,<3.14"
    assert not any(requirement.lower().startswith("mindspore") for requirement in PROJECT["dependencies"])
    assert any(requirement.startswith("mindspore==") for requirement in PROJECT["optional-dependencies"]["job"])


@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_the_launchers_dependencies_resolve_for(version, tmp_path):
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--python-version",
            version,
            "--only-binary=:all:",
            "--target",
            str(tmp_path / "t"),
            "--report",
            str(report),
            *PROJECT["dependencies"],
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = {item["metadata"]["name"].lower().replace("_", "-") for item in json.loads(report.read_text())["install"]}
    assert {"pydantic-core", "kubernetes", "kubernetes-validate", "boto3", "pyyaml"} <= names
