"""The warmup + cosine learning-rate schedule against hand-computed values."""

from __future__ import annotations

import pytest

from job.schedule import warmup_cosine


def test_warmup_then_cosine_matches_hand_computed_values():
    # 2 epochs x 2 steps: W = 2 warmup steps of T = 4.
    rates = warmup_cosine(lr_init=0.0, lr_max=0.1, lr_end=0.0, warmup_epochs=1, total_epochs=2, steps_per_epoch=2)
    # warmup: 0, 0.05; cosine: i=2 -> 0.1 * (1 + cos 0) / 2 = 0.1; i=3 -> 0.1 * (1 + cos(pi/2)) / 2 = 0.05
    assert rates == pytest.approx([0.0, 0.05, 0.1, 0.05])


def test_cosine_without_warmup_ends_near_lr_end():
    rates = warmup_cosine(lr_init=0.0, lr_max=0.2, lr_end=0.02, warmup_epochs=0, total_epochs=1, steps_per_epoch=4)
    # i/T = 0, 1/4, 1/2, 3/4: 0.02 + 0.18 * (1 + cos(pi * i / 4)) / 2
    assert rates == pytest.approx([0.2, 0.02 + 0.09 * (1 + 2**-0.5), 0.11, 0.02 + 0.09 * (1 - 2**-0.5)])


def test_fractional_warmup_and_length():
    rates = warmup_cosine(lr_init=0.01, lr_max=0.11, lr_end=0.0, warmup_epochs=0.5, total_epochs=3, steps_per_epoch=10)
    assert len(rates) == 30
    assert rates[:5] == pytest.approx([0.01, 0.03, 0.05, 0.07, 0.09])
    assert rates[5] == pytest.approx(0.11)
    assert all(later <= earlier for earlier, later in zip(rates[5:], rates[6:]))
