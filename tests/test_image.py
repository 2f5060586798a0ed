"""The container image's Dockerfile: no container engine runs here, so it is linted (hadolint) and checked to
install the project the way the tests do."""

from __future__ import annotations

from pathlib import Path


def test_dockerfile_passes_hadolint_and_installs_like_the_tests():
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint if hadolint.exists() else shutil.which("hadolint")), "--no-color",
                             "--failure-threshold", "warning", str(root / "Dockerfile")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    dockerfile = (root / "Dockerfile").read_text()
    assert 'pip install "./[job]"' in dockerfile  # the project and its `job` extra, from pyproject.toml
    assert "USER 10001:10001" in dockerfile and 'ENTRYPOINT ["python", "-m", "job"]' in dockerfile
