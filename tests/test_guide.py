"""The README's guide from images to a model on a cluster, followed literally where this machine can: the
data split script, and the guide's own `launcher validate` command line."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from launcher.cli import main

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "README.md"
SPLIT = ROOT / "examples" / "split_data.py"


def _guide_command(program: str) -> list[str]:
    """The first command of the guide's shell blocks starting with `program`, continuation lines joined."""
    text = GUIDE.read_text().split("## From your images to a model on a cluster", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            if line.strip().startswith(program):
                return shlex.split(line, comments=True)
    raise AssertionError(f"the guide has no {program} command")


def test_the_guides_validate_command_passes():
    command = _guide_command("launcher validate")
    assert main(command[1:]) == 0


def _tree(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            (root / name / f"{index:03d}.png").write_bytes(f"{name}{index}".encode())
    (root / "notes.txt").write_text("not a class")
    return root


def _split(*arguments: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SPLIT), *map(str, arguments)], capture_output=True, text=True, check=False, timeout=60
    )


def test_the_split_keeps_every_image_once_and_each_class_in_both_parts(tmp_path):
    source = _tree(tmp_path / "images", {"cat": 10, "dog": 7, "owl": 2})
    result = _split(source, tmp_path / "split", "--eval-fraction", "0.2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"3 classes: 15 training and 4 evaluation images in {tmp_path / 'split'}"
    for name, count, held_out in (("cat", 10, 2), ("dog", 7, 1), ("owl", 2, 1)):
        train = {path.name for path in (tmp_path / "split" / "train" / name).iterdir()}
        evaluation = {path.name for path in (tmp_path / "split" / "eval" / name).iterdir()}
        assert len(evaluation) == held_out and not train & evaluation and len(train | evaluation) == count
    again = _split(source, tmp_path / "again", "--eval-fraction", "0.2")
    assert again.returncode == 0
    assert sorted(p.name for p in (tmp_path / "again" / "eval" / "cat").iterdir()) == sorted(
        p.name for p in (tmp_path / "split" / "eval" / "cat").iterdir()
    )  # reproducible


def test_the_split_refuses_what_it_cannot_do(tmp_path):
    source = _tree(tmp_path / "images", {"cat": 3, "lonely": 1})
    refused = _split(source, tmp_path / "split")
    assert refused.returncode == 2 and "lonely has 1 images; each class needs at least 2" in refused.stderr
    assert not (tmp_path / "split").exists()  # nothing copied
    (tmp_path / "used" / "train").mkdir(parents=True)
    used = _split(_tree(tmp_path / "fine", {"cat": 3}), tmp_path / "used")
    assert used.returncode == 2 and "exists already" in used.stderr
    assert _split(source, tmp_path / "x", "--eval-fraction", "1.5").returncode == 2
