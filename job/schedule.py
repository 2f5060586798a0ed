"""The learning-rate schedule: linear warmup, then cosine decay, one value per training step."""

from __future__ import annotations

import math


def warmup_cosine(
    lr_init: float, lr_max: float, lr_end: float, warmup_epochs: float, total_epochs: int, steps_per_epoch: int
) -> list[float]:
    """Linear from lr_init to lr_max over W warmup steps, then
    lr_end + (lr_max - lr_end) * (1 + cos(pi * (i - W) / (T - W))) / 2 for step i of T."""
    total = total_epochs * steps_per_epoch
    warmup = int(warmup_epochs * steps_per_epoch)
    rates = []
    for step in range(total):
        if step < warmup:
            rates.append(lr_init + (lr_max - lr_init) * step / warmup)
        else:
            progress = (step - warmup) / (total - warmup)
            rates.append(lr_end + (lr_max - lr_end) * (1 + math.cos(math.pi * progress)) / 2)
    return rates
