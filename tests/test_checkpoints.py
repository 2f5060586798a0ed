"""Checkpoint commits on a local directory and on a real S3 server: atomicity, verification, conflicts,
retention and garbage collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from job.checkpoints import ATTEMPTS, CheckpointLog, manifest_key
from job.errors import Conflict
from job.storage import S3Store, open_store


def _state_file(folder: Path, epoch: int, size: int = 1000) -> dict[str, Path]:
    path = folder / f"epoch-{epoch}" / "train_state.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([epoch % 256]) * size)
    return {"train_state.ckpt": path}


def _overwrite(store, key: str, data: bytes) -> None:
    """Corrupt an object behind the job's back (same size, other bytes)."""
    if isinstance(store, S3Store):
        store.client.put_object(Bucket=store.bucket, Key=store._key(key), Body=data)
    else:
        (store.root / key).write_bytes(data)


@pytest.fixture()
def store(output_location):
    store = open_store(output_location)
    store.check_access()
    return store


def test_commit_then_restore_the_newest(store, tmp_path):
    log = CheckpointLog(store, "attempt-a")
    for epoch in (1, 2):
        log.commit(epoch, _state_file(tmp_path, epoch), {"history": [epoch], "eval_top1": 0.5})
    restored = log.latest_verified(tmp_path / "scratch", lambda *_: pytest.fail("nothing should be skipped"))
    assert restored.manifest.epoch == 2 and restored.manifest.state["history"] == [2]
    assert restored.files["train_state.ckpt"].read_bytes() == bytes([2]) * 1000
    entry = restored.manifest.files[0]
    assert entry["key"].startswith(f"{ATTEMPTS}attempt-a/epoch-000002/") and len(entry["sha256"]) == 64


def test_second_writer_of_a_step_loses_cleanly(store, tmp_path):
    first, second = CheckpointLog(store, "attempt-a"), CheckpointLog(store, "attempt-b")
    first.commit(1, _state_file(tmp_path / "a", 1), {"history": ["a"]})
    with pytest.raises(Conflict, match="epoch 1 .* already committed by attempt-a"):
        second.commit(1, _state_file(tmp_path / "b", 7), {"history": ["b"]})
    assert not [info.key for info in store.list(f"{ATTEMPTS}attempt-b/")]  # the loser removed its uploads
    assert json.loads(store.get_bytes(manifest_key(1)))["attempt"] == "attempt-a"
    restored = second.latest_verified(tmp_path / "scratch", lambda *_: None)
    assert restored.manifest.attempt == "attempt-a" and restored.files["train_state.ckpt"].read_bytes()[0] == 1


def test_a_retried_commit_whose_manifest_landed_succeeds(store, tmp_path):
    log = CheckpointLog(store, "attempt-a")
    files = _state_file(tmp_path, 1)
    log.commit(1, files, {"history": []})
    log.commit(1, files, {"history": []})  # the answer to the first put was lost: no conflict with itself


def test_corrupted_object_is_detected_and_never_loaded(store, tmp_path):
    log = CheckpointLog(store, "attempt-a")
    for epoch in (1, 2):
        log.commit(epoch, _state_file(tmp_path, epoch), {"history": [epoch]})
    newest = json.loads(store.get_bytes(manifest_key(2)))["files"][0]["key"]
    _overwrite(store, newest, b"\x00" * 1000)
    skipped = []
    restored = log.latest_verified(tmp_path / "scratch", lambda epoch, problem: skipped.append((epoch, problem)))
    assert restored.manifest.epoch == 1
    assert skipped and skipped[0][0] == 2 and "sha256" in skipped[0][1]
    assert not (tmp_path / "scratch" / "restore-epoch-000002").exists()


def test_truncated_or_missing_file_is_skipped(store, tmp_path):
    log = CheckpointLog(store, "attempt-a")
    for epoch in (1, 2):
        log.commit(epoch, _state_file(tmp_path, epoch), {"history": [epoch]})
    store.delete([json.loads(store.get_bytes(manifest_key(2)))["files"][0]["key"]])
    skipped = []
    assert log.latest_verified(tmp_path / "s", lambda e, p: skipped.append(p)).manifest.epoch == 1
    assert "missing or has the wrong size" in skipped[0]


def test_retention_keeps_the_newest_and_the_best(store, tmp_path):
    log = CheckpointLog(store, "attempt-a")
    for epoch, top1 in zip(range(1, 7), (0.2, 0.9, 0.5, 0.6, 0.7, 0.65)):
        log.commit(epoch, _state_file(tmp_path, epoch), {"history": [], "eval_top1": top1})
    assert log.retain(keep=2) == [1, 3, 4]
    assert [manifest.epoch for manifest in log.manifests()] == [2, 5, 6]
    remaining = {info.key.split("/")[3] for info in store.list(ATTEMPTS)}
    assert remaining == {"epoch-000002", "epoch-000005", "epoch-000006"}
    assert log.retain(keep=0) == []  # 0 keeps everything


def test_garbage_collection_of_uncommitted_attempts(store, tmp_path):
    committed = CheckpointLog(store, "attempt-a")
    committed.commit(1, _state_file(tmp_path, 1), {"history": []})
    orphan = tmp_path / "orphan.bin"
    orphan.write_bytes(b"half an upload")
    store.put_file(f"{ATTEMPTS}attempt-dead/epoch-000002/train_state.ckpt", orphan)
    current = CheckpointLog(store, "attempt-now")
    store.put_file(f"{ATTEMPTS}attempt-now/epoch-000002/train_state.ckpt", orphan)
    assert current.collect_garbage(min_age_seconds=3600) == 0  # too young: could be a live writer's
    assert current.collect_garbage(min_age_seconds=0) == 1
    keys = [info.key for info in store.list(ATTEMPTS)]
    assert not any("attempt-dead" in key for key in keys)
    assert any("attempt-now" in key for key in keys) and any("attempt-a" in key for key in keys)
