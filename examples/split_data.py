"""Split an ImageFolder tree (one folder of images per class) into train/ and eval/ trees, reproducibly.

    python3 examples/split_data.py SOURCE DESTINATION [--eval-fraction 0.2] [--seed 0]

Each class keeps the same share of evaluation images (at least one). Standard library only; the images are
copied, SOURCE is not changed, and an existing DESTINATION/train or DESTINATION/eval is refused.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def split(source: Path, destination: Path, eval_fraction: float, seed: int) -> dict[str, tuple[int, int]]:
    """Copy each class's images into destination/train/<class> and destination/eval/<class>; returns the
    (train, eval) counts by class."""
    classes = sorted(path for path in source.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not classes:
        raise ValueError(f"{source} has no class folders; it needs one sub-folder of images per class")
    for part in ("train", "eval"):
        if (destination / part).exists():
            raise ValueError(f"{destination / part} exists already; choose an empty destination")
    images = {
        folder: sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        for folder in classes
    }
    for folder, found in images.items():  # every class checked before anything is copied
        if len(found) < 2:
            raise ValueError(f"{folder} has {len(found)} images; each class needs at least 2 to be split")
    counts = {}
    for folder, found in images.items():
        random.Random(f"{seed}/{folder.name}").shuffle(found)
        cut = min(len(found) - 1, max(1, round(len(found) * eval_fraction)))
        for part, chosen in (("eval", found[:cut]), ("train", found[cut:])):
            target = destination / part / folder.name
            target.mkdir(parents=True, exist_ok=True)
            for image in chosen:
                shutil.copy2(image, target / image.name)
        counts[folder.name] = (len(found) - cut, cut)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    parser.add_argument("--eval-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    if not 0 < arguments.eval_fraction < 1:
        print("error: --eval-fraction must be between 0 and 1", file=sys.stderr)
        return 2
    try:
        counts = split(arguments.source, arguments.destination, arguments.eval_fraction, arguments.seed)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train, evaluation = (sum(count[i] for count in counts.values()) for i in (0, 1))
    print(f"{len(counts)} classes: {train} training and {evaluation} evaluation images in {arguments.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
