"""Hyperparameter sweeps: trials from a grid or from random ranges over job settings, each an ordinary job spec
(named <sweep>-tNN, writing to <output>/trials/NN, labelled and annotated with its sweep), and the sweep file
that gives the same in YAML (a mapping whose `spec:` names the job spec)."""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import random
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contract.pod import RESERVED_SETTINGS
from contract.settings import Settings
from launcher.errors import SpecError
from launcher.gate import Requirement
from launcher.render import check_settings, setting_text
from launcher.spec import DNS_LABEL, JOB_NAME_MAX, JobSettings, JobSpec, apply_overrides, load_spec, parse_spec

PREFIX = "sweep.finetune.mindspore.cn"
SWEEP_LABEL = f"{PREFIX}/name"  # the sweep id, on every trial's Job and pods
TRIAL_LABEL = f"{PREFIX}/trial"  # the trial number, two digits
OVERRIDES_ANNOTATION = f"{PREFIX}/overrides"  # the trial's settings, JSON
OUTPUT_ANNOTATION = f"{PREFIX}/output"  # the trial's output location
TRIALS_ANNOTATION = f"{PREFIX}/trials"  # how many trials the sweep has
MAX_TRIALS = 99  # trial numbers have two digits
NAME_MAX = JOB_NAME_MAX - len("-t01")
SIGNIFICANT_DIGITS = 3  # of random float values, so names and overrides stay readable
SORTABLE = {"best_top1": True, "top1": True, "top5": True, "seconds": False}  # metric: higher is better
DEFAULT_SORT = "best_top1"
RANGE = re.compile(r"^\s*([^:\s]+)\s*:\s*([^:\s]+)\s*(:\s*log\s*)?$")


@dataclass(frozen=True)
class Axis:
    """One grid dimension: a setting and its values in order."""

    key: str
    values: list[Any]


@dataclass(frozen=True)
class Range:
    """One random dimension: a numeric setting drawn from [low, high], log-uniformly with `log`."""

    key: str
    low: float
    high: float
    log: bool
    integer: bool


@dataclass(frozen=True)
class Trial:
    """One job of a sweep: its number, validated spec and the settings it changes (validated, as JSON)."""

    number: int
    spec: JobSpec
    overrides: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.number:02d}"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def output(self) -> str:
        return self.spec.output

    def describe(self) -> str:
        return describe_overrides(self.overrides)


@dataclass(frozen=True)
class Sweep:
    """A planned sweep: its id, its trials in order, how many run at once, the bars on the best trial and the
    metric that ranks them."""

    name: str
    trials: list[Trial]
    parallel: int
    requirements: list[Requirement]
    sort: str


def describe_overrides(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{key}={setting_text(value)}" for key, value in overrides.items())


def trial_name(sweep: str, number: int) -> str:
    return f"{sweep}-t{number:02d}"


def trial_output(output: str, number: int) -> str:
    return f"{output.rstrip('/')}/trials/{number:02d}"


def setting_key(text: str, where: str) -> str:
    """A job setting's name (an optional `settings.` prefix dropped); SpecError for any other key."""
    key = text.strip().removeprefix("settings.")
    if key in RESERVED_SETTINGS:
        raise SpecError(
            f"{where}: {key} is set by the manifest from a top-level spec key or the container layout, not a "
            f"setting a sweep can vary; sweep over settings such as lr_max"
        )
    if key not in JobSettings.model_fields:
        guess = difflib.get_close_matches(key, sorted(JobSettings.model_fields), n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else "; python -m job --help lists the settings"
        raise SpecError(f"{where}: {key or 'the key'} is not a job setting{hint}")
    return key


def _kind(key: str) -> type | None:
    """int or float for a numeric setting, None for any other (bool, enum, text, path)."""
    annotation = Settings.model_fields[key].annotation
    options = [option for option in typing.get_args(annotation) or (annotation,) if option is not type(None)]
    return options[0] if len(options) == 1 and options[0] in (int, float) else None


def scalar(raw: str) -> Any:
    """A command-line value parsed as --set parses it (a YAML scalar)."""
    return apply_overrides({}, [f"value={raw.strip()}"])["value"]


def parse_axis(text: str) -> Axis:
    """`KEY=V1,V2,...` of --grid."""
    where = f"--grid {text!r}"
    key, separator, raw = text.partition("=")
    if not separator:
        raise SpecError(f"{where}: use --grid KEY=V1,V2,... (for example --grid lr_max=0.01,0.05)")
    return axis(setting_key(key, where), [scalar(value) for value in raw.split(",")] if raw.strip() else [], where)


def axis(key: str, values: list[Any], where: str) -> Axis:
    if not values or any(value == "" for value in values):
        raise SpecError(f"{where}: {key} needs values, none empty (for example {key}=V1,V2)")
    return Axis(key, values)


def parse_range(key: str, text: Any, where: str) -> Range:
    """`LOW:HIGH[:log]` for a numeric setting (integers for an int setting)."""
    kind = _kind(key)
    if kind is None:
        shown = getattr(Settings.model_fields[key].annotation, "__name__", "text")
        raise SpecError(
            f"{where}: {key} is not numeric ({shown}); a range needs an int or float setting: give its values "
            f"with --grid {key}=V1,V2"
        )
    match = RANGE.match(str(text))
    try:
        low, high = (float(match.group(group)) for group in (1, 2)) if match else (math.nan, math.nan)
    except ValueError:
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SpecError(f"{where}: use {key}=LOW:HIGH or {key}=LOW:HIGH:log with numbers (for example 0.001:0.1:log)")
    assert match is not None
    log = bool(match.group(3))
    if low > high:
        raise SpecError(f"{where}: LOW {low:g} is above HIGH {high:g}; give the smaller bound first")
    if log and low <= 0:
        raise SpecError(f"{where}: a log range needs LOW > 0 (it is {low:g}); use a positive LOW or drop :log")
    if kind is int and not (low.is_integer() and high.is_integer()):
        raise SpecError(f"{where}: {key} is an integer setting; give integer bounds")
    return Range(key, low, high, log, kind is int)


def _parse_cli_range(text: str) -> Range:
    where = f"--range {text!r}"
    key, separator, raw = text.partition("=")
    if not separator:
        raise SpecError(f"{where}: use --range KEY=LOW:HIGH[:log] (for example --range lr_max=0.001:0.1:log)")
    return parse_range(setting_key(key, where), raw, where)


def grid_overrides(axes: list[Axis]) -> list[dict[str, Any]]:
    """The cartesian product, the first axis varying slowest."""
    return [dict(zip([a.key for a in axes], values)) for values in itertools.product(*(a.values for a in axes))]


def _draw(rng: random.Random, dimension: Range) -> int | float:
    low, high = dimension.low, dimension.high
    value = math.exp(rng.uniform(math.log(low), math.log(high))) if dimension.log else rng.uniform(low, high)
    if dimension.integer:
        return min(max(round(value), int(low)), int(high))
    return min(max(float(f"{value:.{SIGNIFICANT_DIGITS}g}"), low), high)


def random_overrides(ranges: list[Range], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` draws of every range, reproducible with `seed`."""
    rng = random.Random(seed)
    return [{dimension.key: _draw(rng, dimension) for dimension in ranges} for _ in range(count)]


def _once(keys: list[str]) -> None:
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise SpecError(f"the sweep gives {repeated[0]} twice; give each setting once")


def _validated(document: dict, where: str) -> JobSpec:
    spec = parse_spec(document, where)
    try:
        check_settings(spec)
    except SpecError as exc:
        raise SpecError(f"{where}: {str(exc).removeprefix('spec: ')}") from None
    return spec


def build_trials(base: JobSpec, where: str, name: str, overrides: list[dict[str, Any]]) -> list[Trial]:
    """Each trial as the base spec with its settings, name, output, labels and annotations, validated by the
    spec model and the job's own checks (a bad value is the usual one-line message naming the trial)."""
    document = base.model_dump(mode="json", exclude_unset=True)
    trials = []
    for number, changes in enumerate(overrides, start=1):
        trial = copy.deepcopy(document)
        trial.update(name=trial_name(name, number), output=trial_output(base.output, number))
        trial.setdefault("settings", {}).update(changes)
        if trial["settings"].get("mlflow_tracking_uri"):  # each trial its own MLflow run, named as its Job
            trial["settings"].setdefault("mlflow_run_name", trial["name"])
        trial["labels"] = {**trial.get("labels", {}), SWEEP_LABEL: name, TRIAL_LABEL: f"{number:02d}"}
        context = f"{where}, trial {number:02d} ({describe_overrides(changes)})"
        validated = _validated(trial, context).settings.model_dump(mode="json")
        settled = {key: validated[key] for key in changes}
        trial["annotations"] = {
            **trial.get("annotations", {}),
            OVERRIDES_ANNOTATION: json.dumps(settled),
            OUTPUT_ANNOTATION: trial["output"],
            TRIALS_ANNOTATION: str(len(overrides)),
        }
        trials.append(Trial(number, _validated(trial, context), settled))
    return trials


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RandomSearch(_Strict):
    trials: int = Field(ge=1, description="How many trials to draw.")
    seed: int = Field(0, description="Seed of the draws (random.Random).")
    ranges: dict[str, str] = Field(min_length=1, description='Setting: "LOW:HIGH" or "LOW:HIGH:log".')

    @field_validator("ranges", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(item, str):
                    raise ValueError(f'{key}: write the range as a quoted "LOW:HIGH[:log]" (YAML reads 1:10 as 70)')
        return value


class SweepFile(_Strict):
    """A sweep for CI: the job spec, the grid or random ranges, and how to run and judge the trials."""

    spec: str = Field(min_length=1, description="The job spec, relative to this file.")
    name: str | None = Field(None, description="Sweep id (default: the spec's name).")
    grid: dict[str, list[bool | int | float | str]] | None = Field(None, description="Setting: list of values.")
    random: RandomSearch | None = None
    parallel: int = Field(1, ge=1, description="Trial Jobs running at once.")
    require: list[str] = Field([], description="Bars on the best trial, e.g. top1>=0.9.")
    sort: Literal["best_top1", "top1", "top5", "seconds"] = "best_top1"
    overrides: list[str] = Field([], alias="set", description="Spec overrides, as --set KEY=VALUE.")


def read_sweep_file(path: Path) -> SweepFile | None:
    """The sweep file at `path`; None when it is not one (a job spec, or a file load_spec will report on)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(document, dict) or "spec" not in document:
        return None
    try:
        return SweepFile.model_validate(document)
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            place = ".".join(str(part) for part in item["loc"])
            text = item["msg"].removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                text = f"not a sweep file key (it has: {', '.join(SweepFile.model_fields)})".replace("overrides", "set")
            problems.append(f"{place}: {text}" if place else text)
        raise SpecError(f"sweep file {path}: " + "; ".join(problems)) from None


@dataclass
class Request:
    """A sweep as the command line asks for it (values left None come from a sweep file or the defaults)."""

    path: Path
    sets: list[str]
    grid: list[str]
    ranges: list[str]
    random: int | None = None
    seed: int | None = None
    name: str | None = None
    parallel: int | None = None
    require: list[str] | None = None
    sort: str | None = None


def _dimensions(request: Request, file: SweepFile | None) -> list[dict[str, Any]]:
    """The trials' overrides, from the command line or the sweep file (never both)."""
    given = bool(request.grid or request.ranges or request.random is not None)
    if file is not None and given:
        raise SpecError(f"{request.path} is a sweep file: give the grid or the ranges there, not on the command line")
    if file is not None:
        where = f"sweep file {request.path}"
        if (file.grid is None) == (file.random is None):
            raise SpecError(f"{where}: give grid: or random:, exactly one")
        if file.grid is not None:
            axes = [
                axis(setting_key(key, f"{where}: grid"), values, f"{where}: grid") for key, values in file.grid.items()
            ]
            return _grid(axes)
        assert file.random is not None
        ranges = [
            parse_range(setting_key(key, f"{where}: random"), text, f"{where}: random.ranges.{key}")
            for key, text in file.random.ranges.items()
        ]
        seed = file.random.seed if request.seed is None else request.seed
        return _random(ranges, file.random.trials, seed, "random.trials")
    if request.grid and (request.ranges or request.random is not None):
        raise SpecError("give --grid, or --random N with --range, not both")
    if request.grid:
        return _grid([parse_axis(text) for text in request.grid])
    if request.random is None:
        raise SpecError(
            "a sweep needs --grid KEY=V1,V2,... or --random N with --range KEY=LOW:HIGH[:log] (or a sweep file)"
        )
    if not request.ranges:
        raise SpecError(
            f"--random {request.random} needs --range KEY=LOW:HIGH[:log] (for example lr_max=0.001:0.1:log)"
        )
    ranges = [_parse_cli_range(text) for text in request.ranges]
    return _random(ranges, request.random, 0 if request.seed is None else request.seed, "--random")


def _grid(axes: list[Axis]) -> list[dict[str, Any]]:
    _once([a.key for a in axes])
    count = math.prod(len(a.values) for a in axes)
    if count > MAX_TRIALS:
        sizes = " x ".join(str(len(a.values)) for a in axes)
        raise SpecError(
            f"the grid has {count} trials ({sizes}); the limit is {MAX_TRIALS} (trial numbers have two digits): "
            f"drop some values"
        )
    return grid_overrides(axes)


def _random(ranges: list[Range], count: int, seed: int, where: str) -> list[dict[str, Any]]:
    _once([r.key for r in ranges])
    if not 1 <= count <= MAX_TRIALS:
        raise SpecError(
            f"{where} {count}: {count} trials, the limit is {MAX_TRIALS} (trial numbers have two digits)"
            if count > MAX_TRIALS
            else f"{where} {count}: a sweep needs at least 1 trial"
        )
    return random_overrides(ranges, count, seed)


def _name(name: str) -> str:
    if len(name) > NAME_MAX:
        raise SpecError(
            f"sweep name {name} has {len(name)} characters; its Jobs {name}-tNN would pass the "
            f"{JOB_NAME_MAX}-character limit: pass --name with at most {NAME_MAX}"
        )
    if not re.match(DNS_LABEL, name):
        raise SpecError(f"sweep name {name!r} is not a DNS label (lower-case letters, digits and '-'); pass --name")
    return name


def plan(request: Request) -> Sweep:
    """The sweep's trials, each validated, or SpecError naming the first problem."""
    file = read_sweep_file(request.path)
    spec_path = request.path.parent / file.spec if file is not None else request.path
    base = load_spec(spec_path, [*(file.overrides if file else []), *request.sets])
    overrides = _dimensions(request, file)
    name = _name(request.name or (file.name if file and file.name else base.name))
    parallel = request.parallel if request.parallel is not None else file.parallel if file else 1
    if parallel < 1:
        raise SpecError(f"--parallel {parallel}: at least 1 trial Job at once")
    requirements = [Requirement.parse(text) for text in [*(file.require if file else []), *(request.require or [])]]
    sort = request.sort or (file.sort if file else DEFAULT_SORT)
    return Sweep(name, build_trials(base, f"spec {spec_path}", name, overrides), parallel, requirements, sort)
