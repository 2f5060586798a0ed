"""A small real image set: scikit-learn's handwritten digits, upscaled to RGB PNGs in ImageFolder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_digits(
    root: Path, digits: list[int], image_size: int = 32, eval_fraction: float = 0.25, seed: int = 0
) -> tuple[Path, Path]:
    """Write train/ and eval/ ImageFolder trees of the given digits (a stratified split); returns both roots."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    rng = np.random.default_rng(seed)
    train_root, eval_root = root / "train", root / "eval"
    for digit in digits:
        indices = rng.permutation(np.flatnonzero(bunch.target == digit))
        held_out = int(round(len(indices) * eval_fraction))
        for split_root, chosen in ((eval_root, indices[:held_out]), (train_root, indices[held_out:])):
            folder = split_root / f"digit-{digit}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in chosen:
                pixels = (bunch.images[index] * (255.0 / 16.0)).astype(np.uint8)
                image = Image.fromarray(pixels, mode="L").resize((image_size, image_size), Image.Resampling.BILINEAR)
                image.convert("RGB").save(folder / f"{index:04d}.png")
    return train_root, eval_root
