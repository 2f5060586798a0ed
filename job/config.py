"""Reading the job's settings (contract.settings) from the environment, with every problem in one message."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from contract import exits, models
from contract.settings import ENV_PREFIX, Settings, env_name, known_variables
from job.errors import BadInput


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    known = set(known_variables())
    problems = []
    for name in sorted(environ):
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known:
            guess = difflib.get_close_matches(name.upper(), known, n=1)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            problems.append(f"{name}: not a setting of this job{hint}")
    return problems


def _describe(error: ErrorDetails) -> str:
    location = error["loc"]
    if not location:
        return error["msg"].removeprefix("Value error, ")
    name = env_name(str(location[0]))
    if error["type"] == "missing":
        return f"{name}: required but not set"
    given = error.get("input")
    return f"{name}: {error['msg'].removeprefix('Value error, ')} (got {given!r})"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; every problem is listed in one BadInput message."""
    environ = os.environ if environ is None else environ
    problems = _unknown_variables(environ)
    settings = None
    values = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in environ.items()
        if key.upper().startswith(ENV_PREFIX) and key.upper() in set(known_variables())
    }
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    if problems:
        raise BadInput(
            "invalid configuration: "
            + "; ".join(problems)
            + ". Fix these variables (python -m job --help lists them all)."
        )
    assert settings is not None
    return settings


def help_text() -> str:
    """`python -m job --help`, generated from the settings model."""
    lines = [
        "usage: python -m job [--help | --check]",
        "",
        "Fine-tunes a MindSpore Hub model and evaluates it. Configured only by environment variables:",
        "",
        "  --check                    check the settings, output store, data locations and hub descriptor,",
        "                             without training",
        "",
    ]
    for name, field in Settings.model_fields.items():
        if field.is_required():
            default = "required"
        else:
            value = field.get_default(call_default_factory=True)
            default = "unset" if value is None else f"default {getattr(value, 'value', value)}"
        lines.append(f"  {env_name(name):<26} {field.description} [{default}]")
    lines += [
        "",
        "Storage uses the standard AWS_ENDPOINT_URL and AWS_DEFAULT_REGION; credentials come from the "
        "files in FT_S3_CREDENTIALS_DIR or boto3's own sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).",
        "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in exits.MEANINGS.items()) + ".",
        "",
        "Built-in networks (the hub descriptor's model-name: hub ids):",
        *(f"  {line}" for line in models.listing()),
    ]
    return "\n".join(lines)
