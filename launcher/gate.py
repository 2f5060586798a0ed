"""The quality gate: after a Job succeeded, its metrics.json (in the output store) must meet every bar."""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import EXIT_BELOW_BAR, LauncherError, SpecError
from launcher.spec import JobSpec

REQUIREMENT = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*$")
COMPARE = {">=": operator.ge, "<=": operator.le}


class BelowBar(LauncherError):
    """The job succeeded but its model does not meet the bar, or its metrics cannot be read."""

    exit_code = EXIT_BELOW_BAR


@dataclass(frozen=True)
class Requirement:
    metric: str
    comparison: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Requirement:
        match = REQUIREMENT.match(text)
        if not match:
            raise SpecError(f"--require {text!r}: use METRIC>=VALUE or METRIC<=VALUE, e.g. --require top1>=0.9")
        return cls(match.group(1), match.group(2), float(match.group(3)))

    def __str__(self) -> str:
        return f"{self.metric}{self.comparison}{self.bound:g}"


def _read(output: str, endpoint: str | None, region: str | None) -> bytes:
    """metrics.json of an output location: a local path, or s3:// through the spec's endpoint and region (the
    credentials are this machine's: AWS_* variables or ~/.aws)."""
    if not output.startswith("s3://"):
        return (Path(output.removeprefix("file://")) / "metrics.json").read_bytes()
    import boto3
    from botocore.config import Config

    bucket, _, prefix = output.removeprefix("s3://").partition("/")
    key = f"{prefix.rstrip('/')}/metrics.json" if prefix.strip("/") else "metrics.json"
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        config=Config(
            s3={"addressing_style": "path"}, connect_timeout=10, read_timeout=60, retries={"max_attempts": 3}
        ),
    )
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        raise FileNotFoundError(key) from None


def read_metrics(output: str, endpoint: str | None = None, region: str | None = None) -> dict:
    """metrics.json of a run's output location, parsed."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return json.loads(_read(output, endpoint, region))
    except FileNotFoundError:
        raise BelowBar(
            f"no metrics.json in {output}: the job did not commit results there, so its quality is unknown"
        ) from None
    except (BotoCoreError, ClientError, OSError, ValueError) as exc:
        raise BelowBar(f"metrics.json in {output} cannot be read ({exc})") from exc


def check(spec: JobSpec, requirements: list[Requirement]) -> dict:
    """The summary values of the spec's output checked; BelowBar names every bar that is not met."""
    output = spec.output
    summary = read_metrics(output, spec.storage.endpoint, spec.storage.region).get("summary", {})
    missing = [str(r) for r in requirements if not isinstance(summary.get(r.metric), (int, float))]
    if missing:
        raise BelowBar(
            f"metrics.json in {output} has no value for {', '.join(missing)} (it has: {', '.join(sorted(summary))})"
        )
    failed = [
        f"{r.metric} is {summary[r.metric]:g}, the bar is {r}"
        for r in requirements
        if not COMPARE[r.comparison](summary[r.metric], r.bound)
    ]
    if failed:
        raise BelowBar("the job succeeded but the model is below the bar: " + "; ".join(failed))
    return {r.metric: summary[r.metric] for r in requirements}
