"""The image's pip requirements: the project's `job` extra with the MindSpore requirement the build chose.

Run inside the image build with the base's Python (standard library only):
    python requirements.py pyproject.toml "mindspore==2.10.0" > requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

MINDSPORE = "mindspore"


def requirement_name(requirement: str) -> str:
    """The normalised project name of a PEP 508 requirement (`Pillow>=10` -> `pillow`)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def image_requirements(pyproject: dict, mindspore: str) -> list[str]:
    """The `job` extra with its MindSpore requirement replaced by `mindspore` (e.g. `mindspore==2.9.0`)."""
    job = pyproject["project"]["optional-dependencies"]["job"]
    others = [requirement for requirement in job if requirement_name(requirement) != MINDSPORE]
    if len(others) == len(job):
        raise ValueError("pyproject.toml: the `job` extra has no mindspore requirement to replace")
    return [mindspore, *others]


def main(arguments: list[str]) -> int:
    if len(arguments) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pyproject = tomllib.loads(Path(arguments[0]).read_text(encoding="utf-8"))
    print("\n".join(image_requirements(pyproject, arguments[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
