"""`launcher sweep --local`: a 2x2 grid of real short fine-tunes of the digits, one after another on this
machine, ranked by their own metrics.json; a rerun runs nothing again; `sweep status --local` agrees."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from conftest import HUB_ID
from launcher.cli import main


@pytest.mark.slow
def test_a_local_grid_on_the_digits(tmp_path, monkeypatch, hub_root, digits_data, capsys):
    train, evaluation = digits_data
    spec = tmp_path / "job.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "digits",
                "image": "finetune:1",
                "model": HUB_ID,
                "train_data": str(train),
                "eval_data": str(evaluation),
                "output": str(tmp_path / "out"),
                "settings": {  # SHORT_RUN's, for two epochs
                    "hub_mirror": str(hub_root),
                    "epochs": 2,
                    "image_size": 32,
                    "batch_size": 16,
                    "warmup_epochs": 1,
                    "hflip": False,
                    "crop_min_scale": 0.6,
                    "log_every": 100,
                    "num_workers": 2,
                    "export_mindir": False,
                },
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    grid = ["--grid", "lr_max=0.005,0.05", "--grid", "label_smoothing=0,0.1"]
    assert main(["sweep", str(spec), *grid, "--local", "--output", "json"]) == 0
    board = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    outputs = {n: tmp_path / "out" / "trials" / f"0{n}" for n in range(1, 5)}
    metrics = {n: json.loads((outputs[n] / "metrics.json").read_text()) for n in outputs}
    expected = sorted(outputs, key=lambda n: -metrics[n]["summary"]["best_top1"])  # stable: ties in trial order
    assert [row["trial"] for row in board["trials"]] == expected
    for row in board["trials"]:
        summary = metrics[row["trial"]]["summary"]
        assert (row["state"], row["top1"], row["best_top1"], row["seconds"]) == (
            "succeeded",
            summary["top1"],
            summary["best_top1"],
            summary["seconds"],
        )
        settings = metrics[row["trial"]]["settings"]
        assert row["overrides"] == {"lr_max": settings["lr_max"], "label_smoothing": settings["label_smoothing"]}
        assert settings["epochs"] == 2 and settings["scratch_dir"] == str(
            tmp_path / ".launcher" / row["name"] / "scratch"
        )
    assert [row["overrides"] for row in sorted(board["trials"], key=lambda row: row["trial"])] == [
        {"lr_max": lr, "label_smoothing": smoothing} for lr in (0.005, 0.05) for smoothing in (0.0, 0.1)
    ]
    with (tmp_path / "digits-sweep" / "leaderboard.csv").open() as file:
        assert [int(row["trial"]) for row in csv.DictReader(file)] == expected
    assert (tmp_path / "digits-sweep" / "curves.png").stat().st_size > 10_000
    record = json.loads((tmp_path / ".launcher" / "sweeps" / "digits.json").read_text())
    assert [trial["state"] for trial in record["trials"]] == ["succeeded"] * 4

    stamps = {n: (outputs[n] / "metrics.json").stat().st_mtime_ns for n in outputs}
    assert main(["sweep", str(spec), *grid, "--local"]) == 0  # every trial finished: none runs again
    assert {n: (outputs[n] / "metrics.json").stat().st_mtime_ns for n in outputs} == stamps
    assert capsys.readouterr().err.count("finished earlier") == 4
    assert main(["sweep", "status", "digits", "--local", "--output", "json", "--to", str(tmp_path / "s")]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [row["trial"] for row in status["trials"]] == expected
    assert Path(tmp_path / "s" / "leaderboard.csv").exists()
