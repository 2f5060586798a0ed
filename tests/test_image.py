"""The image's build inputs and `launcher run --local --container`'s translation of the rendered pod, without an
engine (tests/image runs the built images for real: `make image-test`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from image.build import device_tag, diagnose, failed_step
from image.requirements import image_requirements, requirement_name
from launcher.container import container_command, unescape_expansion
from launcher.engine import Engine, EngineMissing, find_engine
from launcher.errors import SpecError
from launcher.render import manifests
from launcher.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PODMAN = Engine("/usr/bin/podman")


def _hadolint(path: Path) -> subprocess.CompletedProcess:
    import shutil

    beside = Path(sys.executable).parent / "hadolint"
    return subprocess.run(
        [
            str(beside if beside.exists() else shutil.which("hadolint")),
            "--no-color",
            "--failure-threshold",
            "warning",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("path", ["Dockerfile", "image/standin.Containerfile"])
def test_container_files_pass_hadolint(path):
    result = _hadolint(ROOT / path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_installs_the_job_extra_with_the_chosen_mindspore():
    job = PYPROJECT["project"]["optional-dependencies"]["job"]
    chosen = image_requirements(PYPROJECT, "mindspore==2.9.0")
    assert chosen[0] == "mindspore==2.9.0"
    assert [requirement_name(line) for line in chosen].count("mindspore") == 1
    assert chosen[1:] == [line for line in job if requirement_name(line) != "mindspore"]
    # Nothing in the Dockerfile installs the project or MindSpore a second time, undoing the build arguments.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "[job]" not in dockerfile and "mindspore==" not in dockerfile.lower()


def test_the_job_extra_repeats_the_launcher_requirements_it_shares_with_the_same_bounds():
    shared = {requirement_name(line): line for line in PYPROJECT["project"]["dependencies"]}
    for line in PYPROJECT["project"]["optional-dependencies"]["job"]:
        if requirement_name(line) in shared:
            assert line == shared[requirement_name(line)]
    imported = {"pydantic-settings", "pyyaml", "boto3"}  # what job/ imports of the launcher's dependencies
    assert imported <= {requirement_name(line) for line in PYPROJECT["project"]["optional-dependencies"]["job"]}


def test_requirements_refuse_a_job_extra_without_mindspore():
    with pytest.raises(ValueError, match="no mindspore requirement"):
        image_requirements({"project": {"optional-dependencies": {"job": ["numpy>=1.26"]}}}, "mindspore==2.10.0")
    assert requirement_name("Pydantic_Settings>=2.16,<3") == "pydantic-settings"


def test_device_tags():
    assert device_tag("mindspore-finetune:dev", "cpu") == "mindspore-finetune:dev"
    assert device_tag("mindspore-finetune:dev", "gpu") == "mindspore-finetune:dev-gpu"
    assert device_tag("registry:5000/team/finetune", "ascend") == "registry:5000/team/finetune:latest-ascend"


PODMAN_PIP_FAILURE = """[1/9] STEP 5/6: COPY pyproject.toml image/requirements.py /tmp/build/
--> 1f2e
[1/9] STEP 6/6: RUN --mount=type=secret,id=pip-ca,required=false if [ -s /run/secrets/pip-ca ]; then export
ERROR: Could not find a version that satisfies the requirement mindspore==0.0.1 (from versions: 2.10.0)
ERROR: No matching distribution found for mindspore==0.0.1
Error: building at STEP "RUN ...": exit status 1
"""
BUILDKIT_APT_FAILURE = """#5 [runtime 2/4] RUN apt-get update && apt-get install -y libgomp1
#5 0.512 E: Unable to locate package libgomp1
#5 ERROR: process "/bin/sh -c apt-get update" did not complete successfully: exit code: 100
"""


def test_build_failures_are_named_with_their_step_and_fix():
    assert failed_step(PODMAN_PIP_FAILURE).startswith("RUN --mount=type=secret")
    assert "mindspore==0.0.1" in diagnose(PODMAN_PIP_FAILURE) and "--mindspore-version" in diagnose(PODMAN_PIP_FAILURE)
    assert failed_step(BUILDKIT_APT_FAILURE).startswith("RUN apt-get update")
    assert "apt-get failed" in diagnose(BUILDKIT_APT_FAILURE)
    assert "default_ulimits" in diagnose("error setting rlimit type 7: operation not permitted")
    assert diagnose("something new") == ""


def _spec(tmp_path: Path, **overrides) -> object:
    hub = tmp_path / "hub"
    train, evaluation = tmp_path / "data" / "train", tmp_path / "data" / "eval"
    for folder in (hub, train, evaluation):
        folder.mkdir(parents=True, exist_ok=True)
    document = {
        "name": "ctr",
        "image": "mindspore-finetune:dev",
        "model": "local/1.0/googlenet_digits04",
        "train_data": str(train),
        "eval_data": str(evaluation),
        "output": str(tmp_path / "out"),
        "settings": {"hub_mirror": str(hub), "epochs": 2},
        "env": {"MESSAGE": "costs $5 $(HOME)"},
        "storage": {"credentials_secret": "s3-credentials"},
        **overrides,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_spec(path, [])


def _flags(command: list[str], flag: str) -> list[str]:
    return [command[index + 1] for index, value in enumerate(command) if value == flag]


def test_container_command_reproduces_the_pod(tmp_path):
    spec = _spec(tmp_path)
    documents = manifests(spec)
    pod = next(d for d in documents if d["kind"] == "Job")["spec"]["template"]["spec"]
    with pytest.raises(SpecError, match="storage.credentials_secret: .*AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        container_command(PODMAN, documents, network="none")
    command = container_command(PODMAN, documents, network="none", credentials=tmp_path / "credentials")
    assert command[:3] == ["/usr/bin/podman", "run", "--rm"]
    context = {**pod["securityContext"], **pod["containers"][0]["securityContext"]}
    assert _flags(command, "--user") == [f"{context['runAsUser']}:{context['runAsGroup']}"] == ["10001:10001"]
    assert "--read-only" in command and _flags(command, "--cap-drop") == ["ALL"]
    assert _flags(command, "--security-opt") == ["no-new-privileges"] and _flags(command, "--network") == ["none"]
    assert _flags(command, "--mount") == ["type=volume,destination=/scratch", "type=volume,destination=/cache"]
    assert _flags(command, "--shm-size") == [str(2 * 1024**3)] and _flags(command, "--memory") == [str(16 * 1024**3)]
    environment = _flags(command, "--env")
    assert "MESSAGE=costs $5 $(HOME)" in environment  # the manifest's doubled $ are literal again
    assert not any(value.startswith("AWS_") for value in environment)  # no credential in the environment
    assert "FT_S3_CREDENTIALS_DIR=/var/run/secrets/finetune/s3" in environment
    volumes = _flags(command, "--volume")
    assert f"{tmp_path / 'credentials'}:/var/run/secrets/finetune/s3:ro" in volumes  # the Secret's files
    assert f"{tmp_path / 'hub'}:{tmp_path / 'hub'}:ro" in volumes
    assert f"{tmp_path / 'data' / 'train'}:{tmp_path / 'data' / 'train'}:ro" in volumes
    assert f"{tmp_path / 'out'}:{tmp_path / 'out'}" in volumes and (tmp_path / "out").is_dir()
    assert command[command.index("--entrypoint") + 1 :] == ["python", "mindspore-finetune:dev", "-m", "job"]


def test_container_command_mounts_nothing_for_remote_locations(tmp_path):
    spec = _spec(
        tmp_path,
        train_data="s3://bucket/train",
        eval_data="s3://bucket/eval",
        output="s3://bucket/out",
        settings={"epochs": 2},
    )
    command = container_command(PODMAN, manifests(spec), network=None, credentials=tmp_path / "c")
    credentials = f"{tmp_path / 'c'}:/var/run/secrets/finetune/s3:ro"
    assert _flags(command, "--volume") == [credentials] and "--network" not in command  # only the Secret's files
    assert "FT_OUTPUT=s3://bucket/out" in _flags(command, "--env")


def test_container_command_mounts_a_local_descriptor_folder(tmp_path):
    descriptor = tmp_path / "hub" / "mshub_res" / "assets" / "x.md"
    descriptor.parent.mkdir(parents=True)
    descriptor.write_text("---\n---\n")
    spec = _spec(tmp_path, model=str(descriptor))
    command = container_command(PODMAN, manifests(spec), network=None, credentials=tmp_path / "c")
    assert f"{descriptor.parent}:{descriptor.parent}:ro" in _flags(command, "--volume")
    assert f"FT_MODEL={descriptor}" in _flags(command, "--env")


@pytest.mark.skipif(os.geteuid() != 0, reason="an output owned by someone else needs root to create")
def test_an_output_the_container_user_cannot_write_is_refused(tmp_path):
    output = tmp_path / "owned-by-root"
    output.mkdir(mode=0o755)
    with pytest.raises(SpecError, match="not writable by the image's user 10001: chown 10001:10001"):
        container_command(
            PODMAN, manifests(_spec(tmp_path, output=str(output))), network=None, credentials=tmp_path / "c"
        )


def test_missing_local_inputs_and_several_workers_are_refused(tmp_path):
    spec = _spec(tmp_path, train_data=str(tmp_path / "missing"))
    with pytest.raises(SpecError, match="FT_TRAIN_DATA: .*missing does not exist on this machine"):
        container_command(PODMAN, manifests(spec), network=None, credentials=tmp_path / "c")
    from launcher.container import run_container

    with pytest.raises(SpecError, match="workers: 2"):
        run_container(_spec(tmp_path, workers=2), PODMAN, None)


def test_unescape_expansion_inverts_the_renderer():
    from launcher.render import escape_expansion

    for value in ["$", "$$", "a$(B)c", "plain", "$$$"]:
        assert unescape_expansion(escape_expansion(value)) == value


def test_a_missing_engine_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CONTAINER_ENGINE", raising=False)
    with pytest.raises(EngineMissing, match="no container engine: install podman"):
        find_engine()
    monkeypatch.setenv("CONTAINER_ENGINE", "nerdctl")
    with pytest.raises(EngineMissing, match="CONTAINER_ENGINE=nerdctl is not on PATH"):
        find_engine()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "image": "i:1",
                "model": "m/1/x",
                "train_data": "s3://b/t",
                "eval_data": "s3://b/e",
                "output": "s3://b/o",
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "run", "--local", "--container", str(spec)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: no container engine: install podman (Debian: apt-get "
        "install podman) or docker, or set CONTAINER_ENGINE to one"
    ]
