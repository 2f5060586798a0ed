"""Image sets and hub mirrors on S3: copied once to a local cache, verified, never silently mixed."""

from __future__ import annotations

import pytest

from conftest import HUB_ID
from job import hub
from job.data_source import materialize
from job.errors import BadInput
from job.storage import StorageOptions
from job.storage.digest import sha256_of


@pytest.fixture()
def remote_set(s3_server, digits_data):
    bucket = s3_server.new_bucket()
    return bucket, s3_server.upload_tree(bucket, digits_data[0], "train")


def _snapshot(root):
    return {
        path.relative_to(root).as_posix(): (path.stat().st_mtime_ns, sha256_of(path)) for path in root.rglob("*.png")
    }


@pytest.mark.slow
def test_copy_skips_verified_files_and_repairs_damaged_ones(remote_set, digits_data, tmp_path):
    _, location = remote_set
    root, fingerprint = materialize(location, "FT_TRAIN_DATA", tmp_path, StorageOptions())
    original = {path.relative_to(digits_data[0]).as_posix(): sha256_of(path) for path in digits_data[0].rglob("*.png")}
    first = _snapshot(root)
    assert {key: digest for key, (_, digest) in first.items()} == original
    again, same_fingerprint = materialize(location, "FT_TRAIN_DATA", tmp_path, StorageOptions())
    assert again == root and same_fingerprint == fingerprint and _snapshot(root) == first  # nothing re-downloaded
    damaged = sorted(first)[0]
    (root / damaged).write_bytes(b"garbage")
    materialize(location, "FT_TRAIN_DATA", tmp_path, StorageOptions())
    assert sha256_of(root / damaged) == original[damaged]


@pytest.mark.slow
def test_a_repeated_copy_reads_no_cached_file_and_trusts_only_unchanged_ones(remote_set, tmp_path, monkeypatch):
    import json
    import os

    from job import data_source

    _, location = remote_set
    root, _ = materialize(location, "FT_TRAIN_DATA", tmp_path, StorageOptions())
    before = _snapshot(root)
    index = root / data_source.INDEX
    with monkeypatch.context() as patched:  # a resume checks listings and file status, never the contents
        patched.setattr(data_source, "sha256_of", lambda path: pytest.fail(f"{path} was read again"))
        materialize(location, "FT_TRAIN_DATA", tmp_path, StorageOptions())
    assert _snapshot(root) == before
    touched = sorted(before)[0]  # same size, other bytes, and a modification time of its own
    original = (root / touched).read_bytes()
    (root / touched).write_bytes(bytes(len(original)))
    os.utime(root / touched, ns=(1, 1))
    materialize(location, "FT_TRAIN_DATA", tmp_path, StorageOptions())
    assert (root / touched).read_bytes() == original  # fetched again
    current = _snapshot(root)
    older = {
        key: {"etag": entry["etag"], "size": entry["size"], "sha256": current[key][1]}
        for key, entry in json.loads(index.read_text()).items()
    }
    index.write_text(json.dumps(older))  # the index of a version that recorded sha256s: hashed once, kept
    materialize(location, "FT_TRAIN_DATA", tmp_path, StorageOptions())
    assert _snapshot(root) == current  # nothing fetched again
    assert all("mtime_ns" in entry for entry in json.loads(index.read_text()).values())


@pytest.mark.slow
def test_a_changed_listing_changes_the_fingerprint_and_drops_removed_files(s3_server, remote_set, tmp_path):
    bucket, location = remote_set
    root, fingerprint = materialize(location, "FT_TRAIN_DATA", tmp_path, StorageOptions())
    removed = sorted(_snapshot(root))[0]
    s3_server.client().delete_object(Bucket=bucket, Key=f"train/{removed}")
    _, changed = materialize(location, "FT_TRAIN_DATA", tmp_path, StorageOptions())
    assert changed != fingerprint and not (root / removed).exists()


def test_an_empty_prefix_is_bad_input(s3_server, tmp_path):
    with pytest.raises(BadInput, match="holds no objects"):
        materialize(f"s3://{s3_server.new_bucket()}/nothing", "FT_TRAIN_DATA", tmp_path, StorageOptions())


def test_hub_mirror_on_s3(s3_server, hub_root, tmp_path):
    bucket = s3_server.new_bucket()
    mirror = s3_server.upload_tree(bucket, hub_root, "hub")
    entry = hub.resolve(HUB_ID, mirror=mirror, cache_dir=tmp_path / "cache")
    assert sha256_of(entry.checkpoint) == entry.descriptor.asset("ckpt").sha256
