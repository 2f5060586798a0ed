"""Image sets in ImageFolder layout: scanning and checking them, and the MindSpore input pipelines."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from job.cpus import process_share
from job.errors import BadInput

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]
EVAL_RESIZE_RATIO = 0.875  # resize to size / 0.875, then center-crop `size`, as for ImageNet evaluation
SHOWN = 5
T = TypeVar("T")


@dataclass(frozen=True)
class ImageFolder:
    """A scanned ImageFolder tree: class folder names (sorted) and their image files."""

    root: Path
    files: dict[str, list[Path]]

    @property
    def classes(self) -> list[str]:
        return list(self.files)

    @property
    def size(self) -> int:
        return sum(len(paths) for paths in self.files.values())

    @property
    def suffixes(self) -> list[str]:
        return sorted({path.suffix for paths in self.files.values() for path in paths})


def listing(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES and not name.startswith(".")


def _entries(directory: Path) -> list[os.DirEntry]:
    """A directory's entries sorted by name (os.scandir: file types come with the listing, no stat each)."""
    with os.scandir(directory) as found:
        return sorted(found, key=lambda entry: entry.name)


def _is_image(entry: os.DirEntry) -> bool:
    return _is_image_name(entry.name) and entry.is_file()


def _images(folder: Path) -> list[Path]:
    return [folder / entry.name for entry in _entries(folder) if _is_image(entry)]


def class_layout(where: str, variable: str, loose: list[str], files: dict[str, list[T]]) -> dict[str, list[T]]:
    """The ImageFolder rules over a listing (a local tree or an S3 prefix): images only inside class folders,
    at least one class, no class without images. `files` maps each class folder to its images."""
    if loose:
        raise BadInput(
            f"{variable}={where} holds images directly ({listing(loose)}); move them into one "
            f"sub-folder per class (ImageFolder layout)"
        )
    if not files:
        raise BadInput(f"{variable}={where} has no class folders; it needs one sub-folder of images per class")
    empty = [name for name, paths in files.items() if not paths]
    if empty:
        raise BadInput(
            f"{variable}={where} has class folders without images ({listing(empty)}); add "
            f"{'/'.join(sorted(IMAGE_SUFFIXES))} images or remove the folders"
        )
    return files


def scan_image_folder(root: Path, variable: str) -> ImageFolder:
    """List `root`'s class folders and images; `variable` names the setting in error messages."""
    if not root.is_dir():
        raise BadInput(f"{variable}={root} is not a directory; point it at a folder with one sub-folder per class")
    entries = _entries(root)
    loose = [entry.name for entry in entries if _is_image(entry)]
    folders = [entry for entry in entries if entry.is_dir() and not entry.name.startswith(".")]
    files = {folder.name: _images(root / folder.name) for folder in folders}
    return ImageFolder(root, class_layout(str(root), variable, loose, files))


def listed_image_folder(location: str, variable: str, keys: list[str]) -> ImageFolder:
    """The ImageFolder layout of an object listing (keys relative to `location`), checked without downloading
    anything: `class/image.jpg` keys; `class/` folder markers count as (possibly empty) class folders."""
    loose = sorted(key for key in keys if "/" not in key and _is_image_name(key))
    files: dict[str, list[Path]] = {}
    for key in sorted(keys):
        folder, _, name = key.partition("/")
        if (not name and not key.endswith("/")) or folder.startswith("."):
            continue  # a top-level object, a hidden folder: not classes (as on disk)
        images = files.setdefault(folder, [])
        if name and "/" not in name and _is_image_name(name):
            images.append(Path(folder) / name)  # deeper levels are not the class's images (as on disk)
    return ImageFolder(Path(location), class_layout(location, variable, loose, files))


def check_classes(train: ImageFolder, evaluation: ImageFolder, num_classes: int | None) -> list[str]:
    """The class list (train folders, sorted); the eval set and FT_NUM_CLASSES must agree with it."""
    if num_classes is not None and num_classes != len(train.classes):
        raise BadInput(
            f"FT_NUM_CLASSES={num_classes} but FT_TRAIN_DATA has {len(train.classes)} class folders "
            f"({listing(train.classes)}); set FT_NUM_CLASSES={len(train.classes)} or fix the data"
        )
    unknown = sorted(set(evaluation.classes) - set(train.classes))
    if unknown:
        raise BadInput(
            f"FT_EVAL_DATA has classes the training set lacks ({listing(unknown)}); the model can "
            f"never predict them: add them to FT_TRAIN_DATA or remove them from FT_EVAL_DATA"
        )
    return train.classes


def check_image_sets(
    train: ImageFolder, evaluation: ImageFolder, num_classes: int | None, batch_size: int
) -> list[str]:
    """The class list of two checked sets, and enough training images for one batch."""
    classes = check_classes(train, evaluation, num_classes)
    if train.size < batch_size:
        raise BadInput(
            f"FT_TRAIN_DATA has {train.size} images, fewer than FT_BATCH_SIZE={batch_size}; "
            f"lower the batch size or add images"
        )
    return classes


def worker_count(configured: int, processes: int = 1) -> int:
    """FT_NUM_WORKERS, or (0) this process's share of the CPUs it may use among the pod's `processes`."""
    return configured or process_share(processes)


def build_dataset(
    folder: ImageFolder,
    classes: list[str],
    *,
    training: bool,
    augment: bool,
    hflip: bool,
    crop_min_scale: float,
    image_size: int,
    batch_size: int,
    workers: int,
    shard: tuple[int, int] | None = None,
):
    """Batched (image CHW float32, label int32) MindSpore dataset; decoding and transforms run in parallel."""
    import mindspore as ms
    import mindspore.dataset as ds
    from mindspore.dataset import transforms, vision

    index = {name: classes.index(name) for name in folder.classes}
    num_shards, shard_id = shard if shard else (None, None)
    dataset = ds.ImageFolderDataset(
        str(folder.root),
        num_parallel_workers=workers,
        shuffle=training,
        extensions=folder.suffixes,
        class_indexing=index,
        decode=False,
        num_shards=num_shards,
        shard_id=shard_id,
    )
    if training and augment:
        image_ops = [vision.RandomCropDecodeResize(image_size, scale=(crop_min_scale, 1.0))]
        if hflip:
            image_ops.append(vision.RandomHorizontalFlip())
    else:
        image_ops = [vision.Decode(), vision.Resize(int(image_size / EVAL_RESIZE_RATIO)), vision.CenterCrop(image_size)]
    # transposed while still uint8 (a quarter of float32's bytes), then normalised per plane: the same values as
    # Normalize then HWC2CHW, for about 5% less CPU per image
    image_ops += [vision.HWC2CHW(), vision.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD, is_hwc=False)]
    dataset = dataset.map(image_ops, input_columns="image", num_parallel_workers=workers)
    dataset = dataset.map(transforms.TypeCast(ms.int32), input_columns="label", num_parallel_workers=1)
    return dataset.batch(batch_size, drop_remainder=training)
