"""The quality gate: before submitting, the bars name real metrics and the output store answers from this
machine with the spec's endpoint, region and credentials; after the Job succeeded, its metrics.json (read
the same way) must meet every bar."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from contract.results import COMPARE, METRICS_FILE, parse_bar
from launcher.errors import EXIT_BELOW_BAR, ApiRefused, LauncherError, SpecError
from launcher.spec import JobSpec


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
        try:
            return cls(*parse_bar(text))
        except ValueError as exc:
            raise SpecError(f"--require {exc}") from None

    def __str__(self) -> str:
        return f"{self.metric}{self.comparison}{self.bound:g}"


def _client(endpoint: str | None, region: str | None):
    """An S3 client with the spec's endpoint and region and this machine's credentials (AWS_* variables or
    ~/.aws); SpecError when this machine has none."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise SpecError(
            "the quality gate reads metrics.json from the output store, but this machine has no S3 credentials: "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to a key that can read the output"
        )
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        config=Config(
            s3={"addressing_style": "path"}, connect_timeout=10, read_timeout=60, retries={"max_attempts": 3}
        ),
    )


def _location(output: str) -> tuple[str, str]:
    bucket, _, prefix = output.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def preflight(spec: JobSpec) -> None:
    """Before submitting with --require: the output store answers from here with the spec's endpoint, region
    and this machine's credentials (exit 2 for what this machine or the spec must fix, 3 when it cannot be
    reached), so a gate that cannot read its metrics is found before hours of training."""
    if not spec.output.startswith("s3://"):
        return
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _location(spec.output)
    where = f"the output store ({spec.storage.endpoint or 'AWS S3'}, bucket {bucket})"
    try:
        _client(spec.storage.endpoint, spec.storage.region).list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise SpecError(f"{where}: the bucket does not exist; create it or fix output") from None
        raise ApiRefused(
            f"{where} refused this machine's credentials ({code}: {exc}); the gate needs read access to {spec.output}"
        ) from None
    except BotoCoreError as exc:
        raise ApiRefused(f"{where} cannot be reached from this machine ({exc})") from None


def _read(output: str, endpoint: str | None, region: str | None) -> bytes:
    """metrics.json of an output location: a local path, or s3:// through the spec's endpoint and region."""
    if not output.startswith("s3://"):
        return (Path(output.removeprefix("file://")) / METRICS_FILE).read_bytes()
    bucket, prefix = _location(output)
    key = f"{prefix}/{METRICS_FILE}" if prefix else METRICS_FILE
    client = _client(endpoint, region)
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        raise FileNotFoundError(key) from None


def fetch_metrics(output: str, endpoint: str | None = None, region: str | None = None) -> dict | None:
    """metrics.json of a run's output location, parsed; None when there is none (the run has not finished).
    ApiRefused when it cannot be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return json.loads(_read(output, endpoint, region))
    except FileNotFoundError:
        return None
    except (BotoCoreError, ClientError, OSError, ValueError) as exc:
        raise ApiRefused(f"metrics.json in {output} cannot be read ({exc})") from exc


def read_metrics(output: str, endpoint: str | None = None, region: str | None = None) -> dict:
    """metrics.json of a run's output location, parsed."""
    try:
        metrics = fetch_metrics(output, endpoint, region)
    except ApiRefused as exc:
        raise BelowBar(str(exc)) from exc.__cause__
    if metrics is None:
        raise BelowBar(f"no metrics.json in {output}: the job did not commit results there, so its quality is unknown")
    return metrics


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
