"""The container engine on this machine: podman or docker, whichever is there (CONTAINER_ENGINE chooses).

Standard library only: `python -m image.build` uses it before any virtual environment exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from launcher.errors import EXIT_API_REFUSED, LauncherError, SpecError

ENGINE_VARIABLE = "CONTAINER_ENGINE"
KNOWN_ENGINES = ("podman", "docker")


class EngineMissing(SpecError):
    """No usable container engine on this machine."""


class EngineFailed(LauncherError):
    """The engine could not do what was asked (it was not the job that failed); exit 3 like an API refusal."""

    exit_code = EXIT_API_REFUSED


@dataclass(frozen=True)
class Engine:
    """A container engine command line (`podman` or `docker`, possibly a full path)."""

    command: str

    @property
    def name(self) -> str:
        """podman or docker, from the command's file name (a `docker` that is podman's shim counts as docker)."""
        return os.path.basename(self.command)

    @property
    def is_podman(self) -> bool:
        return self.name.startswith("podman")

    def run(self, *arguments: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run an engine command, capturing its output."""
        return subprocess.run([self.command, *arguments], capture_output=True, text=True, check=False, timeout=timeout)

    def image_exists(self, image: str) -> bool:
        return self.run("image", "inspect", "--format", "{{.Id}}", image).returncode == 0

    def image_size(self, image: str) -> int:
        """The image's size in bytes, as the engine reports it."""
        found = self.run("image", "inspect", "--format", "{{.Size}}", image)
        if found.returncode != 0:
            raise EngineFailed(f"{self.name} image inspect {image}: {found.stderr.strip() or found.stdout.strip()}")
        return int(found.stdout.strip())


def find_engine() -> Engine:
    """CONTAINER_ENGINE if set, else podman, else docker, each checked to answer `version`."""
    chosen = os.environ.get(ENGINE_VARIABLE)
    candidates = [chosen] if chosen else list(KNOWN_ENGINES)
    for candidate in candidates:
        path = shutil.which(candidate)
        if path is None:
            continue
        try:
            answer = subprocess.run([path, "version"], capture_output=True, text=True, check=False, timeout=60)
        except subprocess.TimeoutExpired:
            raise EngineMissing(
                f"{candidate} version did not answer within 60 s: is its daemon or socket healthy?"
            ) from None
        if answer.returncode == 0:
            return Engine(path)
        if chosen or candidate == KNOWN_ENGINES[-1]:
            detail = (answer.stderr.strip() or answer.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise EngineMissing(
                f"{candidate} is installed but does not work ({detail[0]}); start its daemon or "
                f"install podman (Debian: apt-get install podman)"
            )
    if chosen:
        raise EngineMissing(f"{ENGINE_VARIABLE}={chosen} is not on PATH; install it or unset {ENGINE_VARIABLE}")
    raise EngineMissing(
        "no container engine: install podman (Debian: apt-get install podman) or docker, or set "
        f"{ENGINE_VARIABLE} to one"
    )
