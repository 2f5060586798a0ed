"""The run an output belongs to: a resumed run must have the same settings, classes and data."""

from __future__ import annotations

import pytest

from job.config import load_settings
from job.errors import BadInput
from job.run_record import claim
from job.storage import LocalStore

REQUIRED = {"FT_MODEL": "m", "FT_TRAIN_DATA": "t", "FT_EVAL_DATA": "e", "FT_OUTPUT": "o"}
DATA = {"FT_TRAIN_DATA": "a" * 64, "FT_EVAL_DATA": "b" * 64}


def test_first_claim_records_and_a_matching_one_resumes(tmp_path):
    store = LocalStore(tmp_path)
    settings = load_settings(REQUIRED)
    assert claim(store, settings, ["x", "y"], DATA) is True
    assert claim(store, load_settings({**REQUIRED, "FT_LOG_EVERY": "3"}), ["x", "y"], DATA) is False


@pytest.mark.parametrize(
    "settings, classes, data, fragment",
    [
        ({"FT_EPOCHS": "7"}, ["x", "y"], DATA, "FT_EPOCHS was 60, now 7"),
        ({}, ["x", "z"], DATA, "the class list differs"),
        ({}, ["x", "y"], {**DATA, "FT_TRAIN_DATA": "c" * 64}, "FT_TRAIN_DATA changed since the run started"),
    ],
)
def test_another_run_is_refused(tmp_path, settings, classes, data, fragment):
    store = LocalStore(tmp_path)
    claim(store, load_settings(REQUIRED), ["x", "y"], DATA)
    before = (tmp_path / "run.json").read_bytes()
    with pytest.raises(BadInput, match="holds another run") as caught:
        claim(store, load_settings({**REQUIRED, **settings}), classes, data)
    assert fragment in str(caught.value)
    assert (tmp_path / "run.json").read_bytes() == before
