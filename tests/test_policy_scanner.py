"""An independent policy scanner (checkov, in its own virtual environment: `make test` installs it) over every
launcher render and chart render: nothing to fix besides the checks that do not fit run-to-completion training
pods, and each rule the hardening answers shown to fire on a manifest that breaks it."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
from pathlib import Path

import yaml

from launcher.render import manifests
from launcher.spec import JobSpec, load_spec
from test_chart import REQUIRED, VALUES_FILES, render_chart
from test_launcher import EXAMPLES, MINIMAL

pytestmark = pytest.mark.slow  # trains with MindSpore or runs a heavy tool: not in make test-fast

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-scan" / "bin" / "checkov"))
# Checks left to the user's choice, with the reason.
NOT_FITTING = {
    "CKV_K8S_8": "liveness probe: a run-to-completion training pod has no endpoint to probe",
    "CKV_K8S_9": "readiness probe: nothing routes traffic to a training pod",
    "CKV_K8S_11": "CPU limit: throttling a training pod only slows it; the request reserves its cores",
    "CKV_K8S_15": "imagePullPolicy Always: IfNotPresent with versioned tags is the user's choice",
    "CKV_K8S_43": "image digest: pinning by digest is the user's choice (the image option takes one)",
}


def _scan(folder: Path) -> list[dict]:
    """checkov's failed checks over the YAML files of a folder (offline)."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: make test installs checkov into .venv-scan"
    result = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
            "--skip-check",
            ",".join(NOT_FITTING),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": ""},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout or "[]")
    reports = reports if isinstance(reports, list) else [reports]
    return [
        check
        for report in reports
        if isinstance(report, dict)
        for check in report.get("results", {}).get("failed_checks", [])
    ]


def _write(folder: Path, name: str, documents: list[dict]) -> None:
    (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(documents))


def test_every_render_passes_the_scanner(tmp_path):
    for path in EXAMPLES:
        _write(tmp_path, f"launcher-{path.stem}", manifests(load_spec(path)))
    _write(tmp_path, "chart-defaults", render_chart(REQUIRED))
    for path in VALUES_FILES:
        _write(tmp_path, f"chart-{path.stem}", render_chart(yaml.safe_load(path.read_text())))
    failed = [
        f"{check['check_id']} {check['check_name']}: {check['resource']} in {Path(check['file_path']).name}"
        for check in _scan(tmp_path)
    ]
    assert failed == []


def test_the_scanner_finds_what_the_hardening_fixes(tmp_path):
    job = manifests(
        JobSpec.model_validate(
            {
                **MINIMAL,
                "namespace": "default",
                "service_account": "trainer",
                "service_account_token": True,
                "storage": {"credentials_secret": "s3"},
            }
        )
    )[0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["env"].append(
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "AWS_SECRET_ACCESS_KEY"}}}
    )
    _write(tmp_path, "weakened", [job])
    found = {check["check_id"] for check in _scan(tmp_path)}
    expected = {
        "CKV_K8S_21": "default namespace",
        "CKV_K8S_35": "secrets as environment variables",
        "CKV_K8S_38": "service account token mounted",
    }
    assert set(expected) <= found, {key: value for key, value in expected.items() if key not in found}
