"""The `mindspore_hub`-compatible import: the job's loader with the FT_HUB_* settings, and the hub tutorial's
fine-tuning script (examples/tutorial_finetune.py) run unchanged against a local hub."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import mindspore_hub as mshub
from conftest import HUB_ID, job_environment
from contract.paths import PUBLIC_HUB
from contract.settings import Settings
from job.errors import BadInput

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial_finetune.py"


def test_the_loader_settings_come_from_the_jobs_variables(tmp_path):
    assert mshub.hub_options({}) == {
        "mirror": PUBLIC_HUB,
        "cache_dir": Settings.model_fields["hub_cache"].get_default(call_default_factory=True),
        "offline": False,
        "network_dir": None,
    }
    chosen = {"FT_HUB_MIRROR": "s3://hub/mirror", "FT_HUB_CACHE": str(tmp_path), "FT_HUB_OFFLINE": "true"}
    assert mshub.hub_options(chosen) == {
        "mirror": "s3://hub/mirror",
        "cache_dir": tmp_path,
        "offline": True,
        "network_dir": None,
    }
    with pytest.raises(BadInput, match="FT_HUB_OFFLINE='sometimes'"):
        mshub.hub_options({"FT_HUB_OFFLINE": "sometimes"})


def test_load_is_the_upstream_call(hub_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FT_HUB_MIRROR", str(hub_root))
    monkeypatch.setenv("FT_HUB_CACHE", str(tmp_path / "cache"))
    backbone = mshub.load(HUB_ID, include_top=False)
    assert backbone.out_channels == 1024 and len(list(backbone.get_parameters())) == 285
    full = mshub.load(HUB_ID, num_classes="10", include_top=True)  # the hub confs pass strings too
    assert len(list(full.get_parameters())) == 287


@pytest.mark.slow
def test_the_tutorial_fine_tunes_and_evaluates(hub_root, digits_data, tmp_path):
    train, evaluation = digits_data
    result = subprocess.run(
        [
            sys.executable,
            str(TUTORIAL),
            *("--model", HUB_ID, "--train", str(train), "--eval", str(evaluation)),
            *("--epochs", "3", "--batch-size", "16", "--image-size", "32", "--output", str(tmp_path / "ckpt")),
        ],
        env=job_environment(FT_HUB_MIRROR=str(hub_root), FT_HUB_CACHE=str(tmp_path / "cache")),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(re.search(r"^accuracy: ([0-9.]+)$", result.stdout, flags=re.M).group(1))
    assert accuracy >= 0.6  # three digit classes: chance is 0.33
    assert len(list((tmp_path / "ckpt").glob("finetune-*.ckpt"))) == 3  # one checkpoint per epoch
