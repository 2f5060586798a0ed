"""The storage layer with the same semantics on a local directory and on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import time

import pytest

from job.errors import BadInput, Unavailable
from job.storage import S3Store, StorageOptions, download, open_store, read_text
from job.storage.s3 import MULTIPART_THRESHOLD_BYTES


def test_files_round_trip_and_listing(output_location, tmp_path):
    store = open_store(output_location)
    store.check_access()
    source = tmp_path / "blob.bin"
    size = MULTIPART_THRESHOLD_BYTES + 1_000_000  # a multipart upload and a ranged download on S3
    source.write_bytes(b"x" * size)
    store.put_file("a/blob.bin", source)
    (tmp_path / "s.txt").write_text("hi")
    store.put_file("a/b/small.txt", tmp_path / "s.txt")
    assert [(info.key, info.size) for info in store.list("a/")] == [("a/b/small.txt", 2), ("a/blob.bin", size)]
    store.get_file("a/blob.bin", tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
    assert store.get_bytes("a/b/small.txt") == b"hi"
    store.delete(["a/blob.bin", "a/absent"])
    assert [info.key for info in store.list("")] == ["a/b/small.txt"]
    with pytest.raises(FileNotFoundError):
        store.get_bytes("a/blob.bin")


def test_conditional_put_never_overwrites(output_location):
    store = open_store(output_location)
    store.check_access()
    assert store.put_bytes_if_absent("commit.json", b"first") is True
    assert store.put_bytes_if_absent("commit.json", b"second") is False
    assert store.get_bytes("commit.json") == b"first"


def test_stale_uploads_are_aborted(output_location, s3_server, tmp_path):
    store = open_store(output_location)
    store.check_access()
    if isinstance(store, S3Store):
        store.client.create_multipart_upload(Bucket=store.bucket, Key=store._key("up/x"))
    else:
        (store.root / "up").mkdir(parents=True)
        (store.root / "up" / ".x.abc.part").write_bytes(b"half")
    assert store.abort_stale_uploads("up/", older_than_seconds=3600) == 0
    time.sleep(1.1)
    assert store.abort_stale_uploads("up/", older_than_seconds=1) == 1
    assert store.abort_stale_uploads("up/", older_than_seconds=0) == 0


def test_wrong_credentials_and_missing_bucket_are_bad_input(s3_server, monkeypatch):
    bucket = s3_server.new_bucket()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    options = StorageOptions(max_attempts=1)  # a fresh client: the cached one holds the right secret
    with pytest.raises(BadInput, match="access to s3://.* was refused .*check AWS_ACCESS_KEY_ID"):
        open_store(f"s3://{bucket}/x", options).check_access()
    monkeypatch.undo()
    with pytest.raises(BadInput, match="bucket 'no-such-bucket-here' .* does not exist"):
        open_store("s3://no-such-bucket-here/x", StorageOptions(max_attempts=2)).check_access()


def test_unreachable_endpoint_is_retryable(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(Unavailable, match="cannot reach S3 at http://127.0.0.1:9"):
        open_store("s3://any-bucket/x", StorageOptions(max_attempts=1, connect_timeout=1.5)).check_access()


def test_local_output_that_cannot_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(BadInput, match="cannot be created"):
        open_store(str(tmp_path / "file" / "out")).check_access()


def test_fetch_by_uri_from_s3_and_local(s3_server, tmp_path):
    bucket = s3_server.new_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="hub/readme.md", Body=b"hello from s3")
    assert read_text(f"s3://{bucket}/hub/readme.md") == "hello from s3"
    download(f"s3://{bucket}/hub/readme.md", tmp_path / "got.md")
    assert (tmp_path / "got.md").read_text() == "hello from s3"
    with pytest.raises(FileNotFoundError):
        read_text(f"s3://{bucket}/hub/absent.md")
