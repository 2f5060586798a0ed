"""Result files of attempts that died before metrics.json committed them are garbage; committed ones are not."""

from __future__ import annotations

import pytest

from job.results import RESULTS, collect_abandoned
from job.run_record import METRICS_KEY
from job.storage import open_store

DEAD = f"{RESULTS}20000101T000000Z-deadbeef/"


@pytest.fixture()
def store(output_location, tmp_path):
    store = open_store(output_location)
    store.check_access()
    staged = tmp_path / "file.bin"
    staged.write_bytes(b"result bytes")
    for key in (f"{DEAD}model.mindir", f"{DEAD}plots/training_curves.png", "checkpoints/manifests/epoch-000001.json"):
        store.put_file(key, staged)
    return store


def test_abandoned_results_are_collected_once_old_enough(store):
    assert collect_abandoned(store, min_age_seconds=3600) == 0  # too young: could be a live writer's
    assert len(store.list(RESULTS)) == 2
    assert collect_abandoned(store, min_age_seconds=0) == 2
    assert store.list(RESULTS) == []
    assert [info.key for info in store.list("checkpoints/")] == ["checkpoints/manifests/epoch-000001.json"]


def test_nothing_is_collected_once_metrics_json_commits_the_results(store):
    assert store.put_bytes_if_absent(METRICS_KEY, b'{"summary": {}}')
    assert collect_abandoned(store, min_age_seconds=0) == 0
    assert len(store.list(RESULTS)) == 2
