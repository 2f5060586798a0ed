"""The run's output location (a local directory): atomic writes, and never overwriting another run's results."""

from __future__ import annotations

import json
import os
from pathlib import Path

from job import storage
from job.errors import BadInput

CHECKPOINTS = "checkpoints"
METRICS = "metrics.json"


class OutputDir:
    """Files of one run under FT_OUTPUT; each is written to a temporary name and renamed when complete."""

    def __init__(self, location: str) -> None:
        if storage.is_remote(location):
            raise BadInput(f"FT_OUTPUT={location}: only local directories are supported as output; use a path")
        self.root = storage.local_path(location)

    def claim(self) -> None:
        """Create the directory; refuse one that already holds another run's checkpoints or metrics."""
        if (self.root / METRICS).exists() or any((self.root / CHECKPOINTS).glob("*.ckpt")):
            raise BadInput(f"FT_OUTPUT={self.root} already holds results of another run; choose a new location "
                           f"so nothing stored there is overwritten")
        try:
            (self.root / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"FT_OUTPUT={self.root} cannot be created ({exc.strerror}); choose a writable "
                           f"location") from exc

    def path(self, relative: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def staging_path(self, relative: str) -> Path:
        """A temporary sibling of `relative` with the same suffix; pass it to `commit` once fully written."""
        final = self.path(relative)
        return final.with_name(f".{final.stem}.{os.getpid()}.part{final.suffix}")

    def commit(self, staged: Path, relative: str) -> Path:
        final = self.path(relative)
        os.replace(staged, final)
        return final

    def write_json(self, relative: str, document: object) -> Path:
        staged = self.staging_path(relative)
        staged.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return self.commit(staged, relative)
