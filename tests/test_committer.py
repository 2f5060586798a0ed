"""The background committer: a checkpoint file is written on its thread while training goes on, and on the
training thread when commits are backed up, so an outage never holds more than one unwritten epoch in memory."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from job.checkpoints import CheckpointLog
from job.committer import BackgroundCommitter, PendingCommit
from job.progress import Progress
from job.storage import LocalStore
from job.storage.digest import sha256_of


class HeldStore(LocalStore):
    """A local store whose uploads wait until `release` is set (a slow or unavailable store)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()

    def put_file(self, key: str, path: Path) -> None:
        assert self.release.wait(30), "never released"
        super().put_file(key, path)


def _pending(tmp_path: Path, epoch: int, writers: list[str]) -> PendingCommit:
    folder = tmp_path / f"epoch-{epoch}"
    folder.mkdir()
    path = folder / "train_state.ckpt"

    def write() -> None:
        writers.append(threading.current_thread().name)
        path.write_bytes(bytes([epoch]) * 1000)

    return PendingCommit(epoch, {"train_state.ckpt": path}, {"history": []}, folder, write)


def test_files_are_written_on_the_committer_thread_unless_commits_are_backed_up(tmp_path):
    store = HeldStore(tmp_path / "store")
    log = CheckpointLog(store, "attempt")
    writers: list[str] = []
    committer_thread, training_thread = "checkpoint-committer", threading.current_thread().name
    with BackgroundCommitter(log, Progress(io.StringIO(), as_json=True), keep=0) as committer:
        committer.submit(_pending(tmp_path, 1, writers))
        assert not committer.flush(0.5) and writers == [committer_thread]  # written, its upload held
        committer.submit(_pending(tmp_path, 2, writers))  # waits behind the one in flight, unwritten
        assert writers == [committer_thread]
        committer.submit(_pending(tmp_path, 3, writers))  # a second one waiting: written here, at once
        assert writers == [committer_thread, training_thread]
        store.release.set()
        assert committer.flush(30)
    assert writers == [committer_thread, training_thread, committer_thread]
    manifests = log.manifests()
    assert [manifest.epoch for manifest in manifests] == [1, 2, 3]
    for manifest in manifests:
        (entry,) = manifest.files
        assert store.get_bytes(entry["key"]) == bytes([manifest.epoch]) * 1000
        assert entry["sha256"] == sha256_of(store.root / entry["key"])
