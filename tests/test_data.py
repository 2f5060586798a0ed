"""Image set checks: every bad layout is reported clearly before training starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from job.data import check_classes, scan_image_folder
from job.readable import check_images_readable
from job.errors import BadInput


def _image_folder(root: Path, layout: dict[str, int]) -> Path:
    for name, count in layout.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            Image.new("RGB", (8, 8), (index * 20, 0, 0)).save(root / name / f"{index}.png")
    return root


def test_scan_sorts_classes_and_ignores_other_files(tmp_path):
    root = _image_folder(tmp_path / "set", {"zebra": 2, "ant": 3})
    (root / "ant" / "notes.txt").write_text("not an image")
    folder = scan_image_folder(root, "FT_TRAIN_DATA")
    assert folder.classes == ["ant", "zebra"] and folder.size == 5 and folder.suffixes == [".png"]


@pytest.mark.parametrize(
    "prepare, problem",
    [
        (lambda root: None, "is not a directory"),
        (lambda root: root.mkdir(), "has no class folders"),
        (lambda root: _image_folder(root, {"a": 1, "b": 0}), r"class folders without images \(b\)"),
    ],
)
def test_bad_layouts(tmp_path, prepare, problem):
    root = tmp_path / "set"
    prepare(root)
    with pytest.raises(BadInput, match=problem):
        scan_image_folder(root, "FT_TRAIN_DATA")


def test_images_directly_in_the_root_are_a_wrong_layout(tmp_path):
    root = _image_folder(tmp_path / "set", {"a": 1})
    Image.new("RGB", (4, 4)).save(root / "loose.png")
    with pytest.raises(BadInput, match="holds images directly .*loose.png.*one sub-folder per class"):
        scan_image_folder(root, "FT_TRAIN_DATA")


def test_unreadable_images_are_listed(tmp_path):
    root = _image_folder(tmp_path / "set", {"a": 2, "b": 1})
    (root / "a" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = (root / "b" / "0.png").read_bytes()
    (root / "b" / "0.png").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(BadInput, match="FT_TRAIN_DATA has 2 unreadable images") as caught:
        check_images_readable(scan_image_folder(root, "FT_TRAIN_DATA"), "FT_TRAIN_DATA", workers=2)
    assert "a/0.png" in str(caught.value) and "b/0.png" in str(caught.value)


def test_a_repeated_check_decodes_only_what_changed(tmp_path):
    root = _image_folder(tmp_path / "set", {"a": 3, "b": 2})
    cache = tmp_path / "cache"
    folder = scan_image_folder(root, "FT_TRAIN_DATA")
    assert check_images_readable(folder, "FT_TRAIN_DATA", 2, cache) == 5  # the first start decodes all
    assert check_images_readable(folder, "FT_TRAIN_DATA", 2, cache) == 0  # a resume decodes none
    Image.new("RGB", (6, 6), "red").save(root / "a" / "1.png")  # replaced by another image
    assert check_images_readable(folder, "FT_TRAIN_DATA", 2, cache) == 1
    (root / "b" / "0.png").write_bytes(b"not an image any more")
    for _ in range(2):  # an image that went bad is found, and found again: it is never recorded as readable
        with pytest.raises(BadInput, match="1 unreadable images: .*b/0.png"):
            check_images_readable(folder, "FT_TRAIN_DATA", 2, cache)
    other = _image_folder(tmp_path / "other", {"a": 2})  # another set has its own record
    assert check_images_readable(scan_image_folder(other, "FT_TRAIN_DATA"), "FT_TRAIN_DATA", 2, cache) == 2


def test_a_damaged_record_means_decoding_again(tmp_path):
    root = _image_folder(tmp_path / "set", {"a": 2})
    cache = tmp_path / "cache"
    folder = scan_image_folder(root, "FT_TRAIN_DATA")
    check_images_readable(folder, "FT_TRAIN_DATA", 2, cache)
    (record,) = (cache / "readable").iterdir()
    record.write_text("{not json")
    assert check_images_readable(folder, "FT_TRAIN_DATA", 2, cache) == 2


def test_class_agreement(tmp_path):
    train = scan_image_folder(_image_folder(tmp_path / "train", {"a": 1, "b": 1, "c": 1}), "FT_TRAIN_DATA")
    subset = scan_image_folder(_image_folder(tmp_path / "eval", {"a": 1, "c": 1}), "FT_EVAL_DATA")
    assert check_classes(train, subset, None) == ["a", "b", "c"]
    assert check_classes(train, subset, 3) == ["a", "b", "c"]
    with pytest.raises(BadInput, match="FT_NUM_CLASSES=4 but FT_TRAIN_DATA has 3 class folders"):
        check_classes(train, subset, 4)
    shutil.rmtree(tmp_path / "eval")
    extra = scan_image_folder(_image_folder(tmp_path / "eval", {"a": 1, "d": 1}), "FT_EVAL_DATA")
    with pytest.raises(BadInput, match=r"FT_EVAL_DATA has classes the training set lacks \(d\)"):
        check_classes(train, extra, None)
