"""The settings model: defaults, validation that lists every bad variable, and generated help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from contract.settings import Settings, known_variables, required_variables
from job.config import help_text, load_settings
from job.errors import EXIT_BAD_INPUT, BadInput

REQUIRED = {
    "FT_MODEL": "mindspore/1.6/googlenet_cifar10",
    "FT_TRAIN_DATA": "/data/train",
    "FT_EVAL_DATA": "/data/eval",
    "FT_OUTPUT": "/out",
}


def test_defaults_follow_the_tutorial():
    settings = load_settings(REQUIRED)
    assert settings.momentum == 0.9
    assert settings.weight_decay == 4e-5
    assert settings.epochs == 60
    assert settings.device_target.value == "CPU"
    assert settings.num_classes is None


def test_values_are_parsed_from_strings():
    settings = load_settings(
        {
            **REQUIRED,
            "FT_EPOCHS": "3",
            "FT_FREEZE_BACKBONE": "true",
            "FT_DEVICE_TARGET": "Ascend",
            "FT_AMP_LEVEL": "O2",
            "FT_NUM_CLASSES": "26",
        }
    )
    assert (
        settings.epochs,
        settings.freeze_backbone,
        settings.device_target.value,
        settings.amp_level.value,
        settings.num_classes,
    ) == (3, True, "Ascend", "O2", 26)


def test_every_bad_variable_is_listed_in_one_message():
    with pytest.raises(BadInput) as caught:
        load_settings(
            {"FT_MODEL": "m", "FT_EPOCHS": "0", "FT_DEVICE_TARGET": "TPU", "FT_MOMENTUM": "abc", "FT_EPOCH": "5"}
        )
    message = str(caught.value)
    for fragment in (
        "FT_EPOCHS",
        "FT_DEVICE_TARGET",
        "FT_MOMENTUM",
        "FT_TRAIN_DATA: required",
        "FT_EVAL_DATA: required",
        "FT_OUTPUT: required",
        "FT_EPOCH: not a setting",
        "did you mean FT_EPOCHS",
    ):
        assert fragment in message
    assert "\n" not in message
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_schedule_consistency_is_checked():
    with pytest.raises(BadInput, match="FT_LR_END .* must not exceed FT_LR_MAX"):
        load_settings({**REQUIRED, "FT_LR_END": "0.5", "FT_LR_MAX": "0.1"})
    with pytest.raises(BadInput, match="FT_WARMUP_EPOCHS .* must not exceed FT_EPOCHS"):
        load_settings({**REQUIRED, "FT_WARMUP_EPOCHS": "3", "FT_EPOCHS": "2"})
    assert load_settings({**REQUIRED, "FT_EPOCHS": "1"}).warmup_epochs == 1.0  # the default shrinks to fit


def test_help_documents_every_variable_from_the_model():
    text = help_text()
    for name, field in Settings.model_fields.items():
        assert f"FT_{name.upper()}" in text
        assert field.description and field.description in text
    assert set(required_variables()) == set(REQUIRED)
    assert len(known_variables()) == len(Settings.model_fields)


def test_entrypoint_help_and_bad_configuration_exit_codes(tmp_path):
    shown = subprocess.run([sys.executable, "-m", "job", "--help"], capture_output=True, text=True, check=False)
    assert shown.returncode == 0 and "FT_HUB_MIRROR" in shown.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "job"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "FT_EPOCHS": "-1"},
    )
    assert failed.returncode == EXIT_BAD_INPUT
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration")
    assert "FT_EPOCHS" in lines[0] and "FT_MODEL: required" in lines[0]
