"""Bad input through the real entrypoints (`python -m job`, `python -m launcher`): each case exits with its
documented code, prints no traceback, ends stderr with one `error:` line naming the problem, and leaves every
file or object that was stored before the run exactly as it was."""

from __future__ import annotations

import shutil

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import job_environment
from job.errors import EXIT_BAD_INPUT, EXIT_UNAVAILABLE
from job.hub.descriptor import Asset, render_descriptor
from job.hub.publish import publish
from launcher.errors import EXIT_BAD_SPEC
from test_launcher import MINIMAL

SEED = {"previous/notes.txt": b"stored before the run\n", "previous/weights.bin": bytes(range(256)) * 64}
QUICK = {"FT_IMAGE_SIZE": "32", "FT_BATCH_SIZE": "2", "FT_EPOCHS": "1"}
TIMEOUT = 300


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()
TWO_CLASSES = {f"{name}/{index}.png": PNG for name in ("cat", "dog") for index in range(3)}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Write `files` (relative path -> bytes; a path ending in '/' is an empty folder) under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    return root


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seed(location: str | Path, client=None) -> None:
    """Store SEED's files under a local directory or an s3://bucket/prefix (with the boto3 `client`)."""
    if str(location).startswith("s3://"):
        bucket, _, prefix = str(location)[len("s3://") :].partition("/")
        for key, content in SEED.items():
            client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=content)
    else:
        write_tree(Path(location), SEED)


def snapshot(location: str | Path, client=None) -> dict[str, str]:
    """What a location holds, by name: sha256 of every file and 'dir' for every folder under a local directory;
    for s3://bucket/..., every bucket's name and the sha256 of every object in that bucket."""
    if str(location).startswith("s3://"):
        bucket = str(location)[len("s3://") :].split("/")[0]
        found = {f"bucket:{item['Name']}": "" for item in client.list_buckets()["Buckets"]}
        if f"bucket:{bucket}" in found:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                    found[f"{bucket}/{item['Key']}"] = _sha256(body)
        return found
    root = Path(location)
    return {
        path.relative_to(root).as_posix(): "dir" if path.is_dir() else _sha256(path.read_bytes())
        for path in sorted(root.rglob("*"))
    }


def assert_refused(
    module: str,
    args: tuple[str, ...],
    environment: dict[str, str] | None,
    code: int,
    fragment: str,
    workdir: Path,
    stored: tuple[str | Path, ...] = (),
    client=None,
) -> None:
    """Run `python -m <module> <args>` in `workdir`: the documented exit code, no traceback, a last stderr line
    `error: ...` naming the problem, nothing on stdout for the launcher, and `workdir` and every `stored`
    location holding exactly what they held before."""
    locations = (workdir, *stored)
    before = [snapshot(location, client) for location in locations]
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=environment,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == code, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr[-3000:]
    assert fragment in lines[-1], lines[-1]
    if module == "launcher":
        assert result.stdout == ""  # nothing rendered
    assert [snapshot(location, client) for location in locations] == before


# --- the job: settings, hub entries and a used output, on a local output directory -------------------------

HUB = {  # entries of the test hub, by id; each breaks one thing (checkpoints are written by the fixture)
    "no_fences": "# tiny\n\nmodel-name: googlenet\n",
    "bad_yaml": "---\nmodel-name: [googlenet\n---\n",
    "no_model_name": "---\nasset: []\n---\n",
    "short_sha": render_descriptor("googlenet", [Asset("ckpt", "good.ckpt", "abc123")]),
    "only_mindir": render_descriptor("googlenet", [Asset("mindir", "good.mindir", "c" * 64)]),
    "wrong_sha": render_descriptor("googlenet", [Asset("ckpt", "good.ckpt", "0" * 64)]),
    "missing_file": render_descriptor("googlenet", [Asset("ckpt", "absent.ckpt", "0" * 64)]),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, zoo_checkpoint) -> Path:
    """Read-only inputs shared by the cases: good data (data/train, data/eval) and a hub (hub/)."""
    base = tmp_path_factory.mktemp("inputs")
    write_tree(base / "data" / "train", TWO_CLASSES)
    write_tree(base / "data" / "eval", TWO_CLASSES)
    hub = base / "hub"
    publish(hub, "tests/1.0/good", "googlenet", zoo_checkpoint)
    entries = hub / "mshub_res" / "assets" / "tests" / "1.0"
    shutil.copyfile(next(entries.glob("good-*.ckpt")), entries / "good.ckpt")  # the file HUB's descriptors name
    publish(hub, "tests/1.0/custom", "customnet", zoo_checkpoint)
    truncated = base / "truncated.ckpt"
    truncated.write_bytes(zoo_checkpoint.read_bytes()[:100_000])
    publish(hub, "tests/1.0/truncated", "googlenet", truncated)  # its sha256 is the truncated file's
    truncated.unlink()
    for name, text in HUB.items():
        (hub / "mshub_res" / "assets" / "tests" / "1.0" / f"{name}.md").write_text(text)
    return base


def _job_environment(inputs: Path, work: Path, changes: dict[str, str | None]) -> dict[str, str]:
    """A valid job configuration with `changes` applied (None removes a variable; '{output}' in a value is the
    output directory)."""
    output = work / "output"
    environment = job_environment(
        FT_MODEL="tests/1.0/good",
        FT_HUB_MIRROR=str(inputs / "hub"),
        FT_HUB_CACHE=str(work / "cache"),
        FT_TRAIN_DATA=str(inputs / "data" / "train"),
        FT_EVAL_DATA=str(inputs / "data" / "eval"),
        FT_OUTPUT=str(output),
        **QUICK,
    )
    for name, value in changes.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value.replace("{output}", str(output))
    return environment


@pytest.fixture()
def workdir(tmp_path) -> Path:
    """An empty working directory for the job: a bad input leaves nothing there either."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


CHECK = ("--check",)
RUN = ()
JOB_CASES = [
    # settings
    pytest.param(
        CHECK,
        {"FT_EPOCH": "5"},
        EXIT_BAD_INPUT,
        "FT_EPOCH: not a setting of this job (did you mean FT_EPOCHS?)",
        id="unknown-variable",
    ),
    pytest.param(
        CHECK,
        {"FT_EPOCHS": "ten"},
        EXIT_BAD_INPUT,
        "FT_EPOCHS: Input should be a valid integer",
        id="integer-not-a-number",
    ),
    pytest.param(
        CHECK,
        {"FT_BATCH_SIZE": ""},
        EXIT_BAD_INPUT,
        "FT_BATCH_SIZE: Input should be a valid integer",
        id="empty-integer",
    ),
    pytest.param(
        CHECK,
        {"FT_LR_MAX": "fast"},
        EXIT_BAD_INPUT,
        "FT_LR_MAX: Input should be a valid number",
        id="float-not-a-number",
    ),
    pytest.param(
        CHECK,
        {"FT_AUGMENT": "maybe"},
        EXIT_BAD_INPUT,
        "FT_AUGMENT: Input should be a valid boolean",
        id="boolean-not-a-boolean",
    ),
    pytest.param(
        CHECK,
        {"FT_DEVICE_TARGET": "TPU"},
        EXIT_BAD_INPUT,
        "FT_DEVICE_TARGET: Input should be 'CPU', 'GPU' or 'Ascend' (got 'TPU')",
        id="unknown-device",
    ),
    pytest.param(
        CHECK,
        {"FT_EPOCHS": "0"},
        EXIT_BAD_INPUT,
        "FT_EPOCHS: Input should be greater than or equal to 1",
        id="zero-epochs",
    ),
    pytest.param(
        CHECK,
        {"FT_IMAGE_SIZE": "8"},
        EXIT_BAD_INPUT,
        "FT_IMAGE_SIZE: Input should be greater than or equal to 16",
        id="image-size-too-small",
    ),
    pytest.param(
        CHECK,
        {"FT_MOMENTUM": "1"},
        EXIT_BAD_INPUT,
        "FT_MOMENTUM: Input should be less than 1",
        id="momentum-out-of-range",
    ),
    pytest.param(
        CHECK,
        {"FT_NUM_CLASSES": "1"},
        EXIT_BAD_INPUT,
        "FT_NUM_CLASSES: Input should be greater than or equal to 2",
        id="one-class",
    ),
    pytest.param(
        CHECK,
        {"FT_LR_MAX": "nan"},
        EXIT_BAD_INPUT,
        "FT_LR_MAX: Input should be a finite number",
        id="learning-rate-nan",
    ),
    pytest.param(
        CHECK,
        {"FT_LR_MAX": "inf"},
        EXIT_BAD_INPUT,
        "FT_LR_MAX: Input should be a finite number",
        id="learning-rate-infinite",
    ),
    pytest.param(
        CHECK,
        {"FT_SCRATCH_DIR": ""},
        EXIT_BAD_INPUT,
        "FT_SCRATCH_DIR: empty; unset the variable",
        id="empty-directory-setting",
    ),
    pytest.param(
        CHECK,
        {"FT_DEVICES_PER_WORKER": "3", "FT_BATCH_SIZE": "32"},
        EXIT_BAD_INPUT,
        "FT_BATCH_SIZE (32) must be a multiple of the 3 training processes",
        id="batch-not-divisible",
    ),
    pytest.param(
        CHECK,
        {"FT_WORKERS": "2"},
        EXIT_BAD_INPUT,
        "FT_WORKERS=2 needs FT_WORKER_SERVICE",
        id="several-pods-without-service",
    ),
    pytest.param(
        (),
        {"FT_WORKERS": "2", "FT_WORKER_SERVICE": "workers", "FT_BATCH_SIZE": "2"},
        EXIT_BAD_INPUT,
        "distributed runs are pods of an Indexed Job",
        id="several-pods-outside-an-indexed-job",
    ),
    pytest.param(CHECK, {"FT_MODEL": None}, EXIT_BAD_INPUT, "FT_MODEL: required but not set", id="missing-model"),
    pytest.param(
        CHECK,
        {"FT_OUTPUT": None, "FT_EPOCHS": "0", "FT_EPOC": "1"},
        EXIT_BAD_INPUT,
        "FT_EPOC: not a setting of this job (did you mean FT_EPOCHS?); FT_OUTPUT: required but not set; "
        "FT_EPOCHS: Input should be greater than or equal to 1",
        id="every-problem-in-one-line",
    ),
    pytest.param(
        CHECK,
        {"FT_LR_INIT": "0.1", "FT_LR_MAX": "0.01"},
        EXIT_BAD_INPUT,
        "FT_LR_INIT (0.1) must not exceed FT_LR_MAX (0.01)",
        id="warmup-starts-above-peak",
    ),
    pytest.param(
        CHECK,
        {"FT_EARLY_STOP_PATIENCE": "3", "FT_EVAL_EVERY": "0"},
        EXIT_BAD_INPUT,
        "FT_EARLY_STOP_PATIENCE=3 counts evaluations, but FT_EVAL_EVERY=0 evaluates only after the last epoch",
        id="patience-without-evaluations",
    ),
    pytest.param(
        CHECK,
        {"FT_MLFLOW_TRACKING_URI": "mlflow.internal:5000"},
        EXIT_BAD_INPUT,
        "FT_MLFLOW_TRACKING_URI: not an http:// or https:// URL of a tracking server (credentials are refused in "
        "it); for example http://mlflow.example:5000 (got 'mlflow.internal:5000')",
        id="mlflow-uri-without-scheme",
    ),
    pytest.param(
        CHECK,
        {"FT_LR_END": "0.5"},
        EXIT_BAD_INPUT,
        "FT_LR_END (0.5) must not exceed FT_LR_MAX (0.01)",
        id="decay-ends-above-peak",
    ),
    pytest.param(
        CHECK,
        {"FT_EPOCHS": "2", "FT_WARMUP_EPOCHS": "5"},
        EXIT_BAD_INPUT,
        "FT_WARMUP_EPOCHS (5.0) must not exceed FT_EPOCHS (2)",
        id="warmup-longer-than-training",
    ),
    pytest.param(("--epochs", "5"), {}, EXIT_BAD_INPUT, "unexpected arguments --epochs 5", id="command-line-flags"),
    pytest.param(
        CHECK,
        {"FT_DATA_CACHE": "/dev/null/cache"},
        EXIT_BAD_INPUT,
        "FT_DATA_CACHE=/dev/null/cache is not a writable directory (Not a directory)",
        id="data-cache-not-writable",
    ),
    pytest.param(
        RUN,
        {"FT_HUB_CACHE": "/dev/null/hub"},
        EXIT_BAD_INPUT,
        "FT_HUB_CACHE=/dev/null/hub is not a writable directory (Not a directory)",
        id="hub-cache-not-writable",
    ),
    # locations
    pytest.param(
        CHECK,
        {"FT_TRAIN_DATA": "{output}/absent"},
        EXIT_BAD_INPUT,
        "/absent is not a directory",
        id="train-data-missing",
    ),
    pytest.param(
        CHECK,
        {"FT_EVAL_DATA": "{output}/previous/notes.txt"},
        EXIT_BAD_INPUT,
        "previous/notes.txt is not a directory",
        id="eval-data-is-a-file",
    ),
    pytest.param(
        CHECK,
        {"FT_OUTPUT": "{output}/previous/notes.txt/run"},
        EXIT_BAD_INPUT,
        "cannot be created",
        id="output-below-a-file",
    ),
    pytest.param(
        CHECK,
        {"FT_OUTPUT": "s3:///run"},
        EXIT_BAD_INPUT,
        "'s3:///run' is not an S3 location",
        id="output-s3-without-bucket",
    ),
    pytest.param(
        CHECK,
        {"FT_OUTPUT": "gs://bucket/run"},
        EXIT_BAD_INPUT,
        "'gs://bucket/run' is not a location",
        id="output-unsupported-scheme",
    ),
    # hub
    pytest.param(
        CHECK,
        {"FT_MODEL": "tests/1.0/absent"},
        EXIT_BAD_INPUT,
        "unknown hub model 'tests/1.0/absent'",
        id="hub-unknown-id",
    ),
    pytest.param(
        CHECK, {"FT_MODEL": "googlenet"}, EXIT_BAD_INPUT, "'googlenet' is not a hub model id", id="hub-not-an-id"
    ),
    pytest.param(
        CHECK,
        {"FT_MODEL": "{output}/absent.md"},
        EXIT_BAD_INPUT,
        "absent.md does not exist; check FT_MODEL",
        id="hub-descriptor-path-missing",
    ),
    pytest.param(
        CHECK,
        {"FT_MODEL": "tests/1.0/no_fences"},
        EXIT_BAD_INPUT,
        "no front matter between two '---'",
        id="hub-descriptor-without-front-matter",
    ),
    pytest.param(
        CHECK,
        {"FT_MODEL": "tests/1.0/bad_yaml"},
        EXIT_BAD_INPUT,
        "front matter is not valid YAML",
        id="hub-front-matter-not-yaml",
    ),
    pytest.param(
        CHECK,
        {"FT_MODEL": "tests/1.0/no_model_name"},
        EXIT_BAD_INPUT,
        "'model-name' is missing",
        id="hub-front-matter-without-model-name",
    ),
    pytest.param(
        CHECK,
        {"FT_MODEL": "tests/1.0/short_sha"},
        EXIT_BAD_INPUT,
        "asset 0 has an invalid asset-sha256 ('abc123')",
        id="hub-sha256-not-64-hex-digits",
    ),
    pytest.param(
        CHECK,
        {"FT_MODEL": "tests/1.0/only_mindir"},
        EXIT_BAD_INPUT,
        "has no ckpt asset (it lists: mindir)",
        id="hub-descriptor-without-checkpoint",
    ),
    pytest.param(CHECK, {"FT_HUB_OFFLINE": "true"}, EXIT_BAD_INPUT, "not in the cache", id="hub-offline-empty-cache"),
    pytest.param(
        CHECK,
        {"FT_HUB_MIRROR": "http://127.0.0.1:9"},
        EXIT_UNAVAILABLE,
        "cannot reach http://127.0.0.1:9/",
        id="hub-mirror-unreachable",
    ),
    pytest.param(
        CHECK,
        {"FT_HUB_MIRROR": "ftp://mirror.example.com/hub"},
        EXIT_BAD_INPUT,
        "'ftp://mirror.example.com/hub' is not a location this job can use",
        id="hub-mirror-unsupported-scheme",
    ),
    pytest.param(
        RUN, {"FT_MODEL": "tests/1.0/wrong_sha"}, EXIT_BAD_INPUT, "sha256 mismatch for", id="hub-sha256-mismatch"
    ),
    pytest.param(
        RUN,
        {"FT_MODEL": "tests/1.0/truncated"},
        EXIT_BAD_INPUT,
        "ckpt cannot be read (",
        id="hub-truncated-checkpoint",
    ),
    pytest.param(
        RUN,
        {"FT_MODEL": "tests/1.0/missing_file"},
        EXIT_BAD_INPUT,
        "absent.ckpt listed by the hub descriptor does not exist",
        id="hub-checkpoint-file-missing",
    ),
    pytest.param(
        RUN,
        {"FT_MODEL": "tests/1.0/custom"},
        EXIT_BAD_INPUT,
        "no built-in network for hub model-name 'customnet'",
        id="hub-unknown-architecture",
    ),
]


def _tiered(cases: list) -> list:
    """The cases that run the job past its settings (RUN: MindSpore imported) marked slow."""
    return [
        pytest.param(
            *case.values, id=case.id, marks=[*case.marks, *([pytest.mark.slow] if case.values[0] == RUN else [])]
        )
        for case in cases
    ]


@pytest.mark.parametrize("args, changes, code, fragment", _tiered(JOB_CASES))
def test_job_refuses_bad_configuration(inputs, tmp_path, workdir, args, changes, code, fragment):
    seed(tmp_path / "output")
    assert_refused(
        "job", args, _job_environment(inputs, tmp_path, changes), code, fragment, workdir, (tmp_path / "output", inputs)
    )


@pytest.mark.slow  # runs the job up to its refusal (MindSpore imported)
@pytest.mark.parametrize(
    "stored, fragment",
    [
        pytest.param({"metrics.json": b"{not json"}, "metrics.json is damaged", id="damaged-metrics"),
        pytest.param({"metrics.json": b"{}"}, "metrics.json is damaged", id="metrics-without-summary"),
        pytest.param({"run.json": b"[]"}, "run.json is damaged", id="damaged-run-record"),
    ],
)
def test_job_refuses_a_damaged_output(inputs, tmp_path, workdir, stored, fragment):
    output = write_tree(tmp_path / "output", {**SEED, **stored})
    assert_refused("job", RUN, _job_environment(inputs, tmp_path, {}), EXIT_BAD_INPUT, fragment, workdir, (output,))


# --- the job: data sets ---------------------------------------------------------------------------------------


DATA_CASES = [
    pytest.param(
        {**TWO_CLASSES, "dog/broken.png": b"not an image"},
        TWO_CLASSES,
        {},
        "FT_TRAIN_DATA has 1 unreadable images",
        id="corrupt-image",
    ),
    pytest.param(
        TWO_CLASSES,
        {**TWO_CLASSES, "cat/cut.png": PNG[:40]},
        {},
        "FT_EVAL_DATA has 1 unreadable images",
        id="truncated-eval-image",
    ),
    pytest.param(
        {**TWO_CLASSES, "bird/": b""},
        TWO_CLASSES,
        {},
        "has class folders without images (bird)",
        id="empty-class-folder",
    ),
    pytest.param(
        {**TWO_CLASSES, "stray.png": PNG},
        TWO_CLASSES,
        {},
        "holds images directly (stray.png)",
        id="images-in-the-root",
    ),
    pytest.param(
        {f"pets/{name}": image for name, image in TWO_CLASSES.items()},
        TWO_CLASSES,
        {},
        "has class folders without images (pets)",
        id="class-folders-one-level-too-deep",
    ),
    pytest.param({"README.txt": b"images go here"}, TWO_CLASSES, {}, "has no class folders", id="no-class-folders"),
    pytest.param(
        TWO_CLASSES,
        {**TWO_CLASSES, "bird/0.png": PNG},
        {},
        "FT_EVAL_DATA has classes the training set lacks (bird)",
        id="eval-class-missing-from-train",
    ),
    pytest.param(
        TWO_CLASSES,
        TWO_CLASSES,
        {"FT_NUM_CLASSES": "3"},
        "FT_NUM_CLASSES=3 but FT_TRAIN_DATA has 2 class folders",
        id="num-classes-mismatch",
    ),
    pytest.param(
        TWO_CLASSES,
        TWO_CLASSES,
        {"FT_BATCH_SIZE": "64"},
        "has 6 images, fewer than FT_BATCH_SIZE=64",
        id="fewer-images-than-the-batch",
    ),
]
# What the pre-flight (`--check`) finds in an S3 listing, without downloading anything; unreadable images are
# found by decoding, at the start of the run.
DECODED = {"corrupt-image", "truncated-eval-image"}
LAYOUT_CASES = [case for case in DATA_CASES if case.id not in DECODED]


@pytest.mark.slow  # runs the job up to its refusal (MindSpore imported)
@pytest.mark.parametrize("train, evaluation, changes, fragment", DATA_CASES)
def test_job_refuses_bad_data(inputs, tmp_path, workdir, train, evaluation, changes, fragment):
    data = {
        "FT_TRAIN_DATA": str(write_tree(tmp_path / "train", train)),
        "FT_EVAL_DATA": str(write_tree(tmp_path / "eval", evaluation)),
    }
    seed(tmp_path / "output")
    assert_refused(
        "job",
        RUN,
        _job_environment(inputs, tmp_path, {**data, **changes}),
        EXIT_BAD_INPUT,
        fragment,
        workdir,
        (tmp_path / "output", tmp_path / "train", tmp_path / "eval"),
    )


@pytest.mark.parametrize("train, evaluation, changes, fragment", LAYOUT_CASES)
def test_the_check_finds_bad_data_layouts_on_s3(
    inputs, tmp_path, workdir, s3_server, train, evaluation, changes, fragment
):
    client, bucket = s3_server.client(), s3_server.new_bucket()
    for prefix, tree in (("train", train), ("eval", evaluation)):
        for name, content in tree.items():
            client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=content)  # "bird/": a folder marker
    data = {"FT_TRAIN_DATA": f"s3://{bucket}/train", "FT_EVAL_DATA": f"s3://{bucket}/eval"}
    assert_refused(
        "job",
        CHECK,
        _job_environment(inputs, tmp_path, {**data, **changes}),
        EXIT_BAD_INPUT,
        fragment,
        workdir,
        (f"s3://{bucket}",),
        client,
    )


# --- the job: storage, against the real S3 server ---------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, code, fragment",
    [
        pytest.param(
            {"AWS_SECRET_ACCESS_KEY": "not-the-secret"},
            EXIT_BAD_INPUT,
            "/runs/one was refused (403); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
            id="wrong-secret-key",
        ),
        pytest.param(
            {"AWS_ACCESS_KEY_ID": "nobody"},
            EXIT_BAD_INPUT,
            "/runs/one was refused (403); check AWS_ACCESS_KEY_ID",
            id="unknown-access-key",
        ),
        pytest.param(
            {
                "AWS_ACCESS_KEY_ID": None,
                "AWS_SECRET_ACCESS_KEY": None,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_CONFIG_FILE": "/nonexistent",
            },
            EXIT_BAD_INPUT,
            "no usable S3 credentials",
            id="no-credentials",
        ),
        pytest.param(
            {"FT_OUTPUT": "s3://no-such-bucket-here/run"},
            EXIT_BAD_INPUT,
            "bucket 'no-such-bucket-here' of s3://no-such-bucket-here/run does not exist",
            id="missing-bucket",
        ),
        pytest.param(
            {"FT_TRAIN_DATA": "{bucket}/empty"}, EXIT_BAD_INPUT, "/empty holds no objects", id="data-prefix-empty"
        ),
        pytest.param(
            {"FT_EVAL_DATA": "s3://no-such-bucket-here/eval"},
            EXIT_BAD_INPUT,
            "bucket of s3://no-such-bucket-here/eval/ does not exist",
            id="data-bucket-missing",
        ),
        pytest.param(
            {"FT_HUB_MIRROR": "{bucket}/hub"},
            EXIT_BAD_INPUT,
            "unknown hub model 'tests/1.0/good'",
            id="hub-mirror-prefix-empty",
        ),
        pytest.param(
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
            EXIT_UNAVAILABLE,
            "cannot reach S3 at http://127.0.0.1:9",
            id="endpoint-unreachable",
        ),
    ],
)
def test_job_refuses_bad_storage(inputs, tmp_path, workdir, s3_server, changes, code, fragment):
    client = s3_server.client()
    bucket = f"s3://{s3_server.new_bucket()}"
    output = f"{bucket}/runs/one"
    seed(output, client)
    settings = {"FT_OUTPUT": output, "FT_S3_MAX_ATTEMPTS": "1", "FT_S3_CONNECT_TIMEOUT": "2"}
    for name, value in changes.items():
        settings[name] = value if value is None else value.replace("{bucket}", bucket)
    assert_refused(
        "job", CHECK, _job_environment(inputs, tmp_path, settings), code, fragment, workdir, (output,), client
    )


# --- the launcher ---------------------------------------------------------------------------------------------


def _without(key: str) -> dict:
    return {name: value for name, value in MINIMAL.items() if name != key}


@pytest.mark.slow  # one launcher process per case; test_launcher.py checks the same messages in-process
@pytest.mark.parametrize(
    "command, spec, overrides, fragment",
    [
        pytest.param("render", {**MINIMAL, "replicas": 3}, [], "replicas: not a spec key", id="unknown-key"),
        pytest.param("render", _without("output"), [], "output: required but not set", id="missing-key"),
        pytest.param(
            "render",
            {**MINIMAL, "name": "Not_A_Name"},
            [],
            "name: 'Not_A_Name' is not a valid DNS label",
            id="bad-name",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "name": "x" * 53},
            [],
            "name: String should have at most 52 characters",
            id="name-too-long",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "namespace": "ML team"},
            [],
            "namespace: 'ML team' is not a valid DNS label",
            id="bad-namespace",
        ),
        pytest.param(
            "render", {**MINIMAL, "retries": "six"}, [], "retries: Input should be a valid integer", id="wrong-type"
        ),
        pytest.param(
            "render",
            {**MINIMAL, "env": {"AWS_SECRET_ACCESS_KEY": "hunter2"}},
            [],
            "env: AWS_SECRET_ACCESS_KEY is set by the manifest",
            id="inline-secret",
        ),
        pytest.param(
            "render", {**MINIMAL, "env": {"HF_TOKEN": "hunter2"}}, [], "HF_TOKEN looks like a secret", id="inline-token"
        ),
        pytest.param(
            "render",
            {**MINIMAL, "storage": {"endpoint": "https://key:secret@s3.example.com"}},
            [],
            "storage.endpoint: credentials in a URL are refused",
            id="credentials-in-endpoint",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "storage": {"credentials_secret": "S3_Creds"}},
            [],
            "storage.credentials_secret: 'S3_Creds' is not a valid name",
            id="bad-secret-name",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "resources": {"memory": "lots"}},
            [],
            "resources.memory: 'lots' is not a valid Kubernetes quantity",
            id="bad-quantity",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "resources": {"shm": "2 GB"}},
            [],
            "resources.shm: '2 GB' is not a valid Kubernetes quantity",
            id="quantity-with-a-space",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "resources": {"accelerator_resource": "nvidia gpu"}},
            [],
            "resources.accelerator_resource: 'nvidia gpu' is not a valid key",
            id="bad-resource-name",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "labels": {"team": "a b"}},
            [],
            "labels.team: 'a b' is not a valid label value",
            id="bad-label-value",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "settings": {"epoch": 5}},
            [],
            "settings.epoch: not a job setting (did you mean epochs?)",
            id="unknown-setting",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "settings": {"output": "/x"}},
            [],
            "settings.output: set by the manifest itself",
            id="reserved-setting",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "settings": {"epochs": 0}},
            [],
            "settings.epochs: Input should be greater than or equal to 1",
            id="setting-value-refused-by-job",
        ),
        pytest.param(
            "render",
            {**MINIMAL, "settings": {"lr_init": 1, "lr_max": 0.1}},
            [],
            "settings.lr_init (1.0) must not exceed settings.lr_max (0.1)",
            id="contradictory-schedule",
        ),
        pytest.param("render", "name: [tiny\n", [], "spec.yaml: line 2, column 1: not valid YAML", id="spec-not-yaml"),
        pytest.param(
            "run --local --workdir /dev/null/work",
            MINIMAL,
            [],
            "--workdir /dev/null/work: /dev/null/work/scratch cannot be made (Not a directory)",
            id="run-local-bad-workdir",
        ),
        pytest.param(
            "run --local",
            {**MINIMAL, "settings": {"lr_init": 1, "lr_max": 0.1}},
            [],
            "settings.lr_init (1.0) must not exceed settings.lr_max (0.1)",
            id="run-local-checks-settings-first",
        ),
        pytest.param(
            "run --local --workdir {work}",
            {**MINIMAL, "train_data": "/nonexistent/train", "output": "/nonexistent/out"},
            [],
            "the job exited with 2 (bad configuration or input (do not retry))",
            id="run-local-job-refuses-its-input",
        ),
        pytest.param("render", "- name: tiny\n", [], "must be a mapping of keys", id="spec-not-a-mapping"),
        pytest.param("render", MINIMAL, ["epochs"], "--set 'epochs': use --set key=value", id="set-without-value"),
        pytest.param(
            "render", MINIMAL, ["name.first=x"], "--set 'name.first=x': name is not a mapping", id="set-below-a-scalar"
        ),
        pytest.param(
            "render",
            MINIMAL,
            ["settings.epoch=5"],
            "settings.epoch: not a job setting (did you mean epochs?)",
            id="set-unknown-setting",
        ),
        pytest.param(
            "render",
            MINIMAL,
            ["settings.device_target=TPU"],
            "settings.device_target: Input should be 'CPU', 'GPU' or 'Ascend'",
            id="set-bad-setting-value",
        ),
        pytest.param("validate", {**MINIMAL, "replicas": 3}, [], "replicas: not a spec key", id="validate-unknown-key"),
        pytest.param(
            "validate",
            {**MINIMAL, "tolerations": [{"key": "gpu", "effect": "NoSchedule", "bogus": 1}]},
            [],
            "tolerations.0.bogus: not a spec key",
            id="validate-schema-violation",
        ),
    ],
)
def test_launcher_refuses_bad_specs(tmp_path, command, spec, overrides, fragment):
    path = tmp_path / "spec.yaml"
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    work = tmp_path.parent / f"{tmp_path.name}-work"  # run --local's volumes, outside the checked directory
    args = (*command.format(work=work).split(), path.name, *(f"--set={override}" for override in overrides))
    assert_refused("launcher", args, None, EXIT_BAD_SPEC, fragment, tmp_path)
