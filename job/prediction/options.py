"""`python -m job predict`'s settings: FT_PREDICT_* and the job's own FT_* variables, then command-line options
(which win)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from contract.predict import PredictOptions, PredictSettings, env_name, option_variables
from contract.settings import known_variables
from job.config import CommandParser, from_environment

COMMAND = "python -m job predict"


def parser() -> argparse.ArgumentParser:
    found = CommandParser(
        prog=COMMAND,
        description="Classify images with a finished run's model. Each option can also be set by its variable; "
        "the job's FT_DEVICE_TARGET, FT_BATCH_SIZE, FT_NUM_WORKERS, FT_DATA_CACHE, FT_SCRATCH_DIR and FT_S3_* "
        "apply as for training.",
    )
    for name, field in PredictOptions.model_fields.items():
        found.add_argument(f"--{name.replace('_', '-')}", dest=name, help=f"{field.description} [{env_name(name)}]")
    return found


def load_predict_settings(argv: list[str], environ: Mapping[str, str] | None = None) -> PredictSettings:
    """The options from `argv` over those from the environment; every problem in one BadInput message."""
    environ = os.environ if environ is None else environ
    given = {field: value for field, value in vars(parser().parse_args(argv)).items() if value is not None}
    known = set(known_variables()) | set(option_variables())  # a predict Job may carry the training settings
    return from_environment(PredictSettings, environ, env_name, known, COMMAND, given, _named)


def _named(field: str) -> str:
    """How a problem names a setting: an option by its flag and variable, a job setting by its variable."""
    if field in PredictOptions.model_fields:
        return f"--{field.replace('_', '-')} ({env_name(field)})"
    return env_name(field)
