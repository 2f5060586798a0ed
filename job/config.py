"""Reading the job's settings (contract.settings) from the environment, with every problem in one message."""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Callable, Mapping
from typing import NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from contract import exits, models
from contract.settings import ENV_PREFIX, Settings, env_name, known_variables
from job.errors import BadInput

M = TypeVar("M", bound=BaseModel)


class CommandParser(argparse.ArgumentParser):
    """A command's options; an argument error is one BadInput line (exit 2), not argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{self.prog}: {message}; {self.prog} --help lists the options")


def unknown_variables(environ: Mapping[str, str], known: set[str]) -> list[str]:
    """A problem line for every FT_* variable that is not one of `known`, with the closest name suggested."""
    problems = []
    for name in sorted(environ):
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known:
            guess = difflib.get_close_matches(name.upper(), known, n=1)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            problems.append(f"{name}: not a setting of this job{hint}")
    return problems


def describe(error: ErrorDetails, name_of: Callable[[str], str] = env_name) -> str:
    """One validation error as a line naming the variable (`name_of` a field)."""
    location = error["loc"]
    if not location:
        return error["msg"].removeprefix("Value error, ")
    name = name_of(str(location[0]))
    if error["type"] == "missing":
        return f"{name}: required but not set"
    given = error.get("input")
    return f"{name}: {error['msg'].removeprefix('Value error, ')} (got {given!r})"


def validated(model: type[M], values: dict, problems: list[str], name_of: Callable[[str], str], command: str) -> M:
    """`values` validated by `model`; every problem (those given and the model's) in one BadInput message."""
    found = None
    try:
        found = model.model_validate(values)
    except ValidationError as exc:
        problems = [*problems, *(describe(error, name_of) for error in exc.errors())]
    if problems:
        raise BadInput(
            f"invalid configuration: {'; '.join(problems)}. Fix these variables ({command} --help lists them all)."
        )
    assert found is not None
    return found


def from_environment(
    model: type[M],
    environ: Mapping[str, str],
    variable_of: Callable[[str], str],
    known: set[str],
    command: str,
    given: dict | None = None,
    name_of: Callable[[str], str] | None = None,
) -> M:
    """A command's settings: `model`'s fields from their variables (`variable_of`), `given` values over them;
    unknown FT_* variables (not in `known`) and every invalid value in one BadInput message, each setting named by
    `name_of` (default: its variable)."""
    values = {field: environ[variable_of(field)] for field in model.model_fields if variable_of(field) in environ}
    values.update(given or {})
    return validated(model, values, unknown_variables(environ, known), name_of or variable_of, command)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; every problem is listed in one BadInput message."""
    environ = os.environ if environ is None else environ
    known = set(known_variables())
    values = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in environ.items()
        if key.upper().startswith(ENV_PREFIX) and key.upper() in known
    }
    return validated(Settings, values, unknown_variables(environ, known), env_name, "python -m job")


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
