"""The images to classify: every image file under a local folder or an s3:// prefix (copied to the data cache),
in any layout; the ones that do not decode are set aside; an ImageFolder layout of the run's classes gives each
image its label."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from job.data import IMAGE_SUFFIXES, ImageFolder
from job.data_source import materialize
from job.errors import BadInput
from job.readable import unreadable_images
from job.storage import StorageOptions

VARIABLE = "FT_PREDICT_IMAGES"


@dataclass(frozen=True)
class InputImages:
    """The readable images (relative POSIX paths in sorted order, local files), their labels when the layout
    gives them (class indices, else None), and the unreadable ones with their problem."""

    root: Path
    names: list[str]
    labels: list[int] | None
    unreadable: dict[str, str]

    @property
    def paths(self) -> list[Path]:
        return [self.root / name for name in self.names]


def _image_names(root: Path) -> list[str]:
    """Every image file under `root` (hidden files and folders skipped), as sorted relative POSIX paths."""
    found = []
    for folder, folders, files in os.walk(root):
        folders[:] = [name for name in folders if not name.startswith(".")]
        base = Path(folder).relative_to(root)
        found += [
            (base / name).as_posix()
            for name in files
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
        ]
    return sorted(found)


def _labels(names: list[str], classes: list[str]) -> list[int] | None:
    """Class indices when every image sits directly in a folder named after one of the run's classes."""
    index = {name: position for position, name in enumerate(classes)}
    folders = [name.split("/") for name in names]
    if not all(len(parts) == 2 and parts[0] in index for parts in folders):
        return None
    return [index[parts[0]] for parts in folders]


def input_images(location: str, classes: list[str], workers: int, cache: Path, options: StorageOptions) -> InputImages:
    """The images at `location`, each decoded once to set aside the unreadable ones (decoded images are recorded
    in the data cache, so a repeated prediction does not decode them again)."""
    root, _ = materialize(location, VARIABLE, cache, options)
    if not root.is_dir():
        raise BadInput(f"{VARIABLE}={location} is not a directory; point it at a folder of images")
    names = _image_names(root)
    if not names:
        raise BadInput(
            f"{VARIABLE}={location} holds no {'/'.join(sorted(IMAGE_SUFFIXES))} images; point it at the images "
            f"to classify (any layout, sub-folders are searched)"
        )
    _, bad = unreadable_images(ImageFolder(root, {"": [root / name for name in names]}), workers, cache)
    unreadable = {path.relative_to(root).as_posix(): problem for path, problem in bad.items()}
    readable = [name for name in names if name not in unreadable]
    labels = _labels(readable, classes)
    return InputImages(root, readable, labels, unreadable)
