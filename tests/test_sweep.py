"""`launcher sweep`: trials from a grid or random ranges, the sweep file, bad input refused before anything is
submitted, and sweeps run against the local Kubernetes wire-format server (tests/fakekube.py) through the
real `kubernetes` client, with a stand-in for the Job controller and the job that finishes each trial's Job
and writes its metrics.json: names, labels, annotations, outputs, `--parallel`, restarts, the gate and the
leaderboard."""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from fakekube import SPEC, FakeKube, JobRunner
from launcher import leaderboard
from launcher.cli import main
from launcher.sweep import (
    OUTPUT_ANNOTATION,
    OVERRIDES_ANNOTATION,
    SWEEP_LABEL,
    TRIAL_LABEL,
    Range,
    Request,
    plan,
    random_overrides,
)

JOB_POSTS = ("POST", "/apis/batch/v1/namespaces/ml/jobs?fieldValidation=Strict")


def score(overrides: dict) -> float:
    """The stand-in job's best top-1 for a trial's settings: distinct for every trial of the tests' grids."""
    return round(0.5 + 10 * overrides.get("lr_max", 0.01) - 0.5 * overrides.get("label_smoothing", 0.0), 4)


def metrics_document(overrides: dict) -> dict:
    best = score(overrides)
    history = [
        {"epoch": 1, "eval": {"top1": round(best - 0.1, 4)}, "loss": 1.0},
        {"epoch": 2, "eval": {"top1": best}, "loss": 0.5},
    ]
    summary = {"top1": best, "top5": 1.0, "best_top1": best, "best_epoch": 2, "epochs": 2, "seconds": 10 + best}
    return {"summary": summary, "history": history}


def write_local(output: str, document: dict) -> None:
    Path(output).mkdir(parents=True, exist_ok=True)
    (Path(output) / "metrics.json").write_text(json.dumps(document))


def trial_runner(kube: FakeKube, seconds: float = 0.3, write: Callable[[str, dict], None] = write_local) -> JobRunner:
    """The Job controller's stand-in, and the job's: a finished trial's metrics.json (from its overrides) is written
    to the output its annotation names."""

    def finish(job: dict) -> None:
        annotations = job["metadata"]["annotations"]
        write(annotations[OUTPUT_ANNOTATION], metrics_document(json.loads(annotations[OVERRIDES_ANNOTATION])))

    return JobRunner(kube, seconds, finish)


@pytest.fixture()
def kube(tmp_path, monkeypatch):
    fake = FakeKube().start()
    fake.select_jobs_by_label = True
    monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.setattr("launcher.cluster.RECONNECT_SECONDS", 0.05)
    monkeypatch.chdir(tmp_path)
    yield fake
    fake.stop()


def spec_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "output": str(tmp_path / "out"), "settings": {"epochs": 2}, **changes}))
    return path


def job_posts(kube: FakeKube) -> int:
    return kube.requests.count(JOB_POSTS)


def run_json(capsys, arguments: list[str]) -> tuple[int, dict]:
    code = main([*arguments, "--output", "json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


GRID = ["--grid", "lr_max=0.01,0.02", "--grid", "label_smoothing=0,0.1"]


def test_grid_is_the_cartesian_product_in_the_order_given(tmp_path):
    path = spec_file(tmp_path, output="s3://b/runs/")
    sweep = plan(Request(path, [], ["lr_max=0.01,0.02,0.03", "settings.freeze_backbone=true,false"], []))
    assert [trial.overrides for trial in sweep.trials] == [
        {"lr_max": lr, "freeze_backbone": frozen} for lr in (0.01, 0.02, 0.03) for frozen in (True, False)
    ]
    assert [trial.name for trial in sweep.trials] == [f"tiny-t{n:02d}" for n in range(1, 7)]
    assert [trial.output for trial in sweep.trials] == [f"s3://b/runs/trials/{n:02d}" for n in range(1, 7)]
    last = sweep.trials[-1].spec
    assert (last.settings.lr_max, last.settings.freeze_backbone, last.settings.epochs) == (0.03, False, 2)
    assert last.labels == {SWEEP_LABEL: "tiny", TRIAL_LABEL: "06"}
    assert json.loads(last.annotations[OVERRIDES_ANNOTATION]) == {"lr_max": 0.03, "freeze_backbone": False}
    assert (sweep.parallel, sweep.sort, sweep.requirements) == (1, "best_top1", [])


def test_with_mlflow_each_trial_is_its_own_run_named_as_its_job(tmp_path):
    tracked = {"epochs": 2, "mlflow_tracking_uri": "http://mlflow.tracking:5000"}
    sweep = plan(Request(spec_file(tmp_path, settings=tracked), [], ["lr_max=0.01,0.02"], []))
    assert [trial.spec.settings.mlflow_run_name for trial in sweep.trials] == ["tiny-t01", "tiny-t02"]
    named = {**tracked, "mlflow_run_name": "mine"}
    sweep = plan(Request(spec_file(tmp_path, settings=named), [], ["lr_max=0.01,0.02"], []))
    assert [trial.spec.settings.mlflow_run_name for trial in sweep.trials] == ["mine", "mine"]
    assert plan(Request(spec_file(tmp_path), [], ["lr_max=0.01"], [])).trials[0].spec.settings.mlflow_run_name is None


def test_random_draws_are_reproducible_and_within_their_ranges(tmp_path):
    path = spec_file(tmp_path)

    def draws(seed: int | None) -> list[dict]:
        request = Request(path, [], [], ["lr_max=0.0001:0.1:log", "epochs=1:9", "label_smoothing=0:0.2"], 12, seed)
        return [trial.overrides for trial in plan(request).trials]

    first = draws(1)
    assert len(first) == 12 and first == draws(1) and first != draws(2) and draws(None) == draws(0)
    for overrides in first:
        assert 0.0001 <= overrides["lr_max"] <= 0.1 and 0 <= overrides["label_smoothing"] <= 0.2
        assert isinstance(overrides["epochs"], int) and 1 <= overrides["epochs"] <= 9
        for value in (overrides["lr_max"], overrides["label_smoothing"]):
            assert value == float(f"{value:.3g}")  # three significant digits
    assert len({overrides["epochs"] for overrides in first}) > 3


def test_log_ranges_draw_log_uniformly():
    uniform, log = (
        [draw["x"] for draw in random_overrides([Range("x", 1e-4, 1e-1, flag, False)], 99, 7)] for flag in (False, True)
    )
    below = [sum(value < 1e-2 for value in values) / len(values) for values in (uniform, log)]
    assert below[0] < 0.2 and below[1] > 0.55  # a third of a log range's decades is below 0.01: two thirds of draws
    assert sum(math.log10(value) for value in log) / len(log) == pytest.approx(-2.5, abs=0.3)


def test_the_sweep_file(tmp_path, capsys):
    spec_file(tmp_path)
    sweep_path = tmp_path / "ci" / "sweep.yaml"
    sweep_path.parent.mkdir()
    sweep_path.write_text(
        yaml.safe_dump(
            {
                "spec": "../job.yaml",
                "name": "nightly",
                "grid": {"lr_max": [0.01, 0.02], "amp_level": ["O0", "O1"]},
                "parallel": 2,
                "require": ["top1>=0.9"],
                "sort": "seconds",
                "set": ["settings.epochs=5"],
            },
            sort_keys=False,  # the grid's order is the file's
        )
    )
    sweep = plan(Request(sweep_path, [], [], []))
    assert [trial.name for trial in sweep.trials] == ["nightly-t01", "nightly-t02", "nightly-t03", "nightly-t04"]
    assert sweep.trials[1].overrides == {"lr_max": 0.01, "amp_level": "O1"}
    assert (sweep.parallel, sweep.sort, [str(r) for r in sweep.requirements]) == (2, "seconds", ["top1>=0.9"])
    assert {trial.spec.settings.epochs for trial in sweep.trials} == {5}
    random_file = tmp_path / "random.yaml"
    random_file.write_text(yaml.safe_dump({"spec": "job.yaml", "random": {"trials": 3, "ranges": {"lr_max": "0.1:1"}}}))
    code, listed = run_json(capsys, ["sweep", str(random_file), "--dry-run", "--parallel", "3"])
    assert code == 0 and listed["parallel"] == 3 and len(listed["trials"]) == 3


@pytest.mark.parametrize(
    "document, fragment",
    [
        ({"spec": "job.yaml", "grid": {"lr_max": [0.1]}, "paralel": 2}, "paralel: not a sweep file key"),
        (
            {"spec": "job.yaml", "random": {"trials": 2, "ranges": {"epochs": "1:10"}}, "grid": {"lr_max": [1]}},
            "exactly one",
        ),
        ({"spec": "job.yaml", "random": {"trials": 2, "ranges": {"epochs": 70}}}, 'quoted "LOW:HIGH[:log]"'),
        ({"spec": "job.yaml", "grid": {"lr_maxx": [0.1]}}, "grid: lr_maxx is not a job setting (did you mean lr_max?)"),
        ({"spec": "job.yaml", "grid": {"lr_max": []}}, "lr_max needs values"),
        ({"spec": "job.yaml", "grid": {"lr_max": [0.1]}, "sort": "loss"}, "sort: Input should be"),
        ({"spec": "absent.yaml", "grid": {"lr_max": [0.1]}}, "does not exist"),
    ],
)
def test_bad_sweep_files_are_one_line(kube, tmp_path, capsys, document, fragment):
    spec_file(tmp_path)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["sweep", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and fragment in error
    assert kube.requests == []


BAD_INPUT = [
    (["--grid", "lr_maxx=0.1"], "lr_maxx is not a job setting (did you mean lr_max?)"),
    (["--grid", "lr_max="], "--grid 'lr_max=': lr_max needs values"),
    (["--grid", "lr_max=0.1,"], "lr_max needs values, none empty"),
    (["--grid", "lr_max"], "use --grid KEY=V1,V2"),
    (["--random", "2", "--range", "freeze_backbone=0:1"], "freeze_backbone is not numeric (bool)"),
    (["--random", "2", "--range", "amp_level=0:1"], "amp_level is not numeric (AmpLevel)"),
    (["--random", "2", "--range", "mlflow_experiment=0:1"], "mlflow_experiment is not numeric (str)"),
    (["--random", "2", "--range", "lr_max=0.1"], "use lr_max=LOW:HIGH or lr_max=LOW:HIGH:log"),
    (["--random", "2", "--range", "lr_max=a:b:log"], "use lr_max=LOW:HIGH"),
    (["--random", "2", "--range", "lr_max=0.1:0.01"], "LOW 0.1 is above HIGH 0.01"),
    (["--random", "2", "--range", "lr_max=0:0.1:log"], "a log range needs LOW > 0"),
    (["--random", "2", "--range", "epochs=1.5:4"], "epochs is an integer setting; give integer bounds"),
    (["--grid", "lr_max=0.1", "--random", "2", "--range", "epochs=1:3"], "not both"),
    ([], "a sweep needs --grid"),
    (["--random", "3"], "--random 3 needs --range"),
    (["--random", "100", "--range", "lr_max=0.1:1"], "--random 100: 100 trials, the limit is 99"),
    (
        ["--grid", f"epochs={','.join(map(str, range(1, 11)))}", "--grid", f"seed={','.join(map(str, range(10)))}"],
        "the grid has 100 trials (10 x 10); the limit is 99",
    ),
    (["--grid", "lr_max=0.1", "--grid", "settings.lr_max=0.2"], "gives lr_max twice"),
    (["--grid", "lr_max=0.1", "--random", "2", "--range", "lr_max=0.1:1"], "not both"),
    (["--random", "2", "--range", "lr_max=0.1:1", "--range", "lr_max=0.2:1"], "gives lr_max twice"),
    (["--grid", "output=s3://b/x,s3://b/y"], "output is set by the manifest"),
    (["--grid", "workers=1,2"], "workers is set by the manifest"),
    (["--grid", "lr_max=0.01,-1"], "trial 02 (lr_max=-1): settings.lr_max: Input should be greater than 0"),
    (["--grid", "lr_init=0.5", "--grid", "lr_max=0.1"], "settings.lr_init (0.5) must not exceed settings.lr_max"),
    (["--grid", "lr_max=0.1", "--name", "a" * 49], "has 49 characters; its Jobs"),
    (["--grid", "lr_max=0.1", "--name", "Bad_Name"], "is not a DNS label"),
    (["--grid", "lr_max=0.1", "--parallel", "0"], "--parallel 0: at least 1"),
    (["--grid", "lr_max=0.1", "--require", "accuracy>=0.9"], "metrics.json's summary has no accuracy"),
]


@pytest.mark.parametrize("extra, fragment", BAD_INPUT, ids=[fragment[:40] for _, fragment in BAD_INPUT])
def test_bad_input_is_one_line_and_submits_nothing(kube, tmp_path, capsys, extra, fragment):
    assert main(["sweep", str(spec_file(tmp_path)), *extra]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and fragment in error, error
    assert kube.requests == []


def test_the_name_may_take_48_characters(tmp_path, capsys):
    code, listed = run_json(
        capsys, ["sweep", str(spec_file(tmp_path)), "--grid", "lr_max=0.1", "--name", "a" * 48, "--dry-run"]
    )
    assert code == 0 and listed["trials"][0]["name"] == "a" * 48 + "-t01"


def test_dry_run_lists_the_trials_and_needs_no_cluster(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    assert main(["sweep", str(spec_file(tmp_path)), *GRID, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["trial", "job", "overrides", "->", "output"]
    assert lines[2].split() == [
        "02",
        "tiny-t02",
        "lr_max=0.01,",
        "label_smoothing=0.1",
        "->",
        f"{tmp_path}/out/trials/02",
    ]
    assert len(lines) == 5


def test_a_sweep_in_the_cluster(kube, tmp_path, capsys):
    path = spec_file(tmp_path, queue="team-a", labels={"team": "vision"}, annotations={"example.com/note": "n"})
    with trial_runner(kube) as runner:
        code, board = run_json(capsys, ["sweep", str(path), *GRID, "--parallel", "2", "--name", "lr"])
    assert code == 0 and board["exit"] == 0
    assert runner.most_unfinished == 2  # two at once, never more
    assert job_posts(kube) == 4 and sorted(name for _, name in kube.jobs) == [f"lr-t0{n}" for n in range(1, 5)]
    job = kube.jobs[("ml", "lr-t03")]
    assert job["metadata"]["labels"] | job["spec"]["template"]["metadata"]["labels"] == job["metadata"]["labels"]
    labels = job["metadata"]["labels"]
    assert (labels[SWEEP_LABEL], labels[TRIAL_LABEL], labels["kueue.x-k8s.io/queue-name"], labels["team"]) == (
        "lr",
        "03",
        "team-a",
        "vision",
    )
    annotations = job["metadata"]["annotations"]
    assert json.loads(annotations[OVERRIDES_ANNOTATION]) == {"lr_max": 0.02, "label_smoothing": 0.0}
    assert annotations[OUTPUT_ANNOTATION] == f"{tmp_path}/out/trials/03" and annotations["example.com/note"] == "n"
    env = {item["name"]: item["value"] for item in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["FT_OUTPUT"], env["FT_LR_MAX"], env["FT_LABEL_SMOOTHING"], env["FT_EPOCHS"]) == (
        f"{tmp_path}/out/trials/03",
        "0.02",
        "0",
        "2",
    )
    assert ("ml", "lr-t03") in kube.network_policies
    expected = ["lr-t03", "lr-t04", "lr-t01", "lr-t02"]  # best_top1 = 0.5 + 10 lr_max - label_smoothing / 2
    assert [row["name"] for row in board["trials"]] == expected and board["best"] == "lr-t03"
    assert board["settings"] == ["lr_max", "label_smoothing"]
    assert (
        board["trials"][0]
        | {"best_top1": 0.7, "state": "succeeded", "overrides": {"lr_max": 0.02, "label_smoothing": 0.0}}
        == board["trials"][0]
    )
    with (tmp_path / "lr-sweep" / "leaderboard.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["job"] for row in rows] == expected and rows[0]["best_top1"] == "0.7"
    assert (rows[1]["lr_max"], rows[1]["label_smoothing"], rows[1]["state"]) == ("0.02", "0.1", "succeeded")
    assert (tmp_path / "lr-sweep" / "curves.png").read_bytes().startswith(b"\x89PNG")
    code, status = run_json(capsys, ["sweep", "status", "lr", "--to", str(tmp_path / "status")])
    assert code == 0 and [row["name"] for row in status["trials"]] == expected
    assert {row["state"] for row in status["trials"]} == {"succeeded"}
    assert [row["overrides"] for row in status["trials"]] == [row["overrides"] for row in board["trials"]]
    code, by_time = run_json(capsys, ["sweep", "status", "lr", "--sort", "seconds", "--to", str(tmp_path / "status")])
    assert [row["name"] for row in by_time["trials"]] == expected[::-1]
    assert job_posts(kube) == 4


@pytest.mark.parametrize("parallel, trials", [(1, 3), (3, 7)])
def test_parallel_is_never_exceeded(kube, tmp_path, capsys, parallel, trials):
    values = ",".join(f"0.0{n}" for n in range(1, trials + 1))
    with trial_runner(kube, seconds=0.2) as runner:
        code, board = run_json(
            capsys, ["sweep", str(spec_file(tmp_path)), "--grid", f"lr_max={values}", "--parallel", str(parallel)]
        )
    assert code == 0 and len(board["trials"]) == trials and job_posts(kube) == trials
    assert runner.most_unfinished == parallel


def test_a_restarted_sweep_creates_no_job_twice(kube, tmp_path, capsys):
    path = spec_file(tmp_path)
    with trial_runner(kube) as runner:
        runner.hold = {"tiny-t03", "tiny-t04"}
        started = time.monotonic()
        assert main(["sweep", str(path), *GRID, "--parallel", "2", "--timeout", "3"]) == 4
        assert time.monotonic() - started < 15
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: timed out after 3 s")
        assert job_posts(kube) == 4
        del kube.jobs[("ml", "tiny-t01")]  # gone (ttlSecondsAfterFinished), its metrics.json stays
        runner.hold = set()
        code, board = run_json(capsys, ["sweep", str(path), *GRID, "--parallel", "2"])
    assert code == 0 and [row["state"] for row in board["trials"]] == ["succeeded"] * 4
    assert job_posts(kube) == 4 and ("ml", "tiny-t01") not in kube.jobs  # nothing created again
    assert [row["name"] for row in board["trials"]] == ["tiny-t03", "tiny-t04", "tiny-t01", "tiny-t02"]
    code, status = run_json(capsys, ["sweep", "status", "tiny"])
    assert [(row["name"], row["state"]) for row in status["trials"]][-2:] == [
        ("tiny-t01", "missing"),
        ("tiny-t02", "succeeded"),
    ]
    assert status["trials"][2]["best_top1"] == 0.6  # its output still holds metrics.json
    assert main(["sweep", str(path), "--grid", "lr_max=0.05,0.06"]) == 2  # the same id, other trials
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the sweep id is taken by a different sweep" in error and "tiny-t02" in error
    assert job_posts(kube) == 4


def test_a_job_of_the_same_name_from_elsewhere_is_refused(kube, tmp_path, capsys):
    assert main(["submit", str(spec_file(tmp_path, name="tiny-t01"))]) == 0  # no sweep labels or annotations
    capsys.readouterr()
    assert main(["sweep", str(spec_file(tmp_path)), "--grid", "lr_max=0.1"]) == 2  # created: 409, then read
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: Job tiny-t01 exists with no sweep overrides") and "different sweep" in error
    assert job_posts(kube) == 2


def test_an_output_holding_another_trials_run_is_refused(kube, tmp_path, capsys):
    write_local(str(tmp_path / "out" / "trials" / "01"), {**metrics_document({}), "settings": {"lr_max": 0.5}})
    assert main(["sweep", str(spec_file(tmp_path)), "--grid", "lr_max=0.1"]) == 2
    assert "holds a finished run with lr_max=0.5, not trial 01's lr_max=0.1" in capsys.readouterr().err
    assert job_posts(kube) == 0


def test_a_failed_trial_fails_the_sweep(kube, tmp_path, capsys):
    with trial_runner(kube) as runner:
        runner.fail = {"tiny-t02"}
        assert main(["sweep", str(spec_file(tmp_path)), *GRID, "--parallel", "4"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == "error: 1 of 4 trials did not succeed: tiny-t02"
    table = captured.out.splitlines()
    assert table[0] == "sweep tiny: 4 trials, ranked by best_top1"
    assert table[-1].split()[:3] == ["02", "tiny-t02", "failed"]  # no metrics: ranked last


@pytest.mark.parametrize("bar, code", [("top1>=0.7", 0), ("top1>=0.75", 5)])
def test_require_gates_on_the_best_trial(kube, tmp_path, capsys, bar, code):
    with trial_runner(kube):
        assert main(["sweep", str(spec_file(tmp_path)), *GRID, "--parallel", "2", "--require", bar]) == code
    captured = capsys.readouterr()
    if code == 0:
        assert captured.out.strip().splitlines()[-1] == "quality gate passed on the best trial tiny-t03: top1=0.7"
    else:
        assert captured.err.strip().splitlines()[-1] == (
            "error: the best trial tiny-t03 (lr_max=0.02, label_smoothing=0): the job succeeded but the model is "
            "below the bar: top1 is 0.7, the bar is top1>=0.75"
        )


def test_status_of_an_unknown_sweep(kube, capsys):
    assert main(["sweep", "status", "nothing"]) == 3
    assert "no Jobs of sweep nothing in namespace ml" in capsys.readouterr().err
    assert main(["sweep", "status", "nothing", "--local"]) == 2
    assert "no local sweep nothing here" in capsys.readouterr().err


def test_s3_outputs_are_read_through_the_specs_endpoint(kube, tmp_path, s3_server, monkeypatch, capsys):
    bucket = s3_server.new_bucket()

    def write_s3(output: str, document: dict) -> None:
        key = output.removeprefix(f"s3://{bucket}/") + "/metrics.json"
        s3_server.client().put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())

    path = spec_file(tmp_path, output=f"s3://{bucket}/sweeps/lr", storage={"endpoint": s3_server.endpoint})
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the spec (and the Jobs' environment) name the endpoint
    with trial_runner(kube, write=write_s3):
        code, board = run_json(capsys, ["sweep", str(path), "--grid", "lr_max=0.01,0.03", "--parallel", "2"])
    assert code == 0 and [row["output"] for row in board["trials"]] == [
        f"s3://{bucket}/sweeps/lr/trials/02",
        f"s3://{bucket}/sweeps/lr/trials/01",
    ]
    assert [row["best_top1"] for row in board["trials"]] == [0.8, 0.6]
    code, status = run_json(capsys, ["sweep", "status", "tiny"])
    assert [row["best_top1"] for row in status["trials"]] == [0.8, 0.6]
    assert main(["sweep", str(path), "--grid", "lr_max=0.01,0.03"]) == 0  # finished: followed, nothing created
    assert job_posts(kube) == 2


def test_the_picture_is_skipped_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    entries = [leaderboard.Entry(1, "x-t01", "succeeded", {"lr_max": 0.1}, "out/1", metrics_document({"lr_max": 0.1}))]
    assert leaderboard.write(entries, ["lr_max"], tmp_path / "board") == [tmp_path / "board" / "leaderboard.csv"]
    assert capsys.readouterr().err == "note: matplotlib is not installed, so no curves.png; pip install matplotlib\n"
    assert not (tmp_path / "board" / "curves.png").exists()


def test_ranking_puts_trials_without_metrics_last_and_varying_settings_only():
    def entry(number: int, overrides: dict, best: float | None) -> leaderboard.Entry:
        metrics = None if best is None else {"summary": {"best_top1": best, "seconds": 100 - number}}
        return leaderboard.Entry(number, f"s-t0{number}", "succeeded" if metrics else "running", overrides, "", metrics)

    entries = [
        entry(1, {"lr_max": 0.1, "epochs": 2}, 0.8),
        entry(2, {"lr_max": 0.2, "epochs": 2}, None),
        entry(3, {"lr_max": 0.3, "epochs": 2}, 0.9),
        entry(4, {"lr_max": 0.4, "epochs": 2}, 0.8),
    ]
    assert [e.number for e in leaderboard.ranked(entries, "best_top1")] == [3, 1, 4, 2]  # ties in trial order
    assert [e.number for e in leaderboard.ranked(entries, "seconds")] == [4, 3, 1, 2]
    assert leaderboard.varying(entries) == ["lr_max"] and leaderboard.varying(entries[:1]) == ["lr_max", "epochs"]
    assert leaderboard.best(entries, "best_top1") == entries[2]


def test_a_stuck_trial_starts_no_further_trial(kube, tmp_path, capsys):
    waiting = {"reason": "InvalidImageName", "message": 'Failed to apply default image tag "Bad": invalid reference'}
    container = {"name": "finetune", "image": "Bad", "imageID": "", "ready": False, "restartCount": 0}
    kube.pods["tiny-t01"] = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "tiny-t01-abcde", "namespace": "ml", "creationTimestamp": "2026-11-27T10:00:00Z"},
            "status": {"phase": "Pending", "containerStatuses": [{**container, "state": {"waiting": waiting}}]},
        }
    ]
    with trial_runner(kube) as runner:
        runner.hold = {"tiny-t01"}
        assert main(["sweep", str(spec_file(tmp_path)), "--grid", "lr_max=0.01,0.02,0.03"]) == 6
    captured = capsys.readouterr()
    assert "tiny-t01 (namespace ml): Pending: InvalidImageName" in captured.err
    assert captured.err.strip().splitlines()[-1] == (
        "error: 3 of 3 trials did not succeed: tiny-t01, tiny-t02, tiny-t03 (tiny-t01 stuck)"
    )
    assert job_posts(kube) == 1 and [row.split()[2] for row in captured.out.splitlines()[2:]] == [
        "pending",
        "missing",
        "missing",
    ]


def test_a_local_sweep_skips_finished_trials_and_keeps_its_id(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = spec_file(tmp_path)
    for number, lr in ((1, 0.01), (2, 0.02)):
        write_local(str(tmp_path / "out" / "trials" / f"0{number}"), metrics_document({"lr_max": lr}))
    code, board = run_json(capsys, ["sweep", str(path), "--grid", "lr_max=0.01,0.02", "--local"])
    assert code == 0 and [row["name"] for row in board["trials"]] == ["tiny-t02", "tiny-t01"]  # none ran: no data
    record = json.loads((tmp_path / ".launcher" / "sweeps" / "tiny.json").read_text())
    assert [(t["name"], t["state"], t["overrides"]) for t in record["trials"]] == [
        ("tiny-t01", "succeeded", {"lr_max": 0.01}),
        ("tiny-t02", "succeeded", {"lr_max": 0.02}),
    ]
    code, status = run_json(capsys, ["sweep", "status", "tiny", "--local"])
    assert [(row["name"], row["best_top1"]) for row in status["trials"]] == [("tiny-t02", 0.7), ("tiny-t01", 0.6)]
    assert main(["sweep", str(path), "--grid", "lr_max=0.03", "--local"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the sweep id tiny is taken by a different local sweep" in error
