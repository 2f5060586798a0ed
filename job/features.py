"""Cached backbone features: with a frozen backbone and no random augmentation, the backbone is a fixed function
of each image, so it runs once over each image set and the epochs train the head on the stored features."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import mindspore.dataset as ds
import numpy as np
from mindspore import nn

from contract.settings import Settings
from job.distributed import Topology
from job.models.heads import WithHead
from job.progress import Progress


def applies(settings: Settings, topology: Topology) -> bool:
    """Whether a run trains on cached features: frozen backbone, no augmentation, one training process
    (data-parallel runs keep the image pipeline, each rank reading its own shard)."""
    return settings.freeze_backbone and not settings.augment and not topology.is_distributed


class PooledFeatures(nn.Cell):
    """A WithHead network up to its classifier: the backbone, then the head's pooling, giving (N, C)."""

    def __init__(self, network: WithHead) -> None:
        super().__init__(auto_prefix=False)  # the network's own cells: parameter names stay as they are
        self.backbone = network.backbone
        self.pool = network.head.pooling()

    def construct(self, images):
        return self.pool(self.backbone(images))


@dataclass(frozen=True)
class FeatureSet:
    """Pooled features (N, C) and labels (N,) of an image set, in its unshuffled order."""

    features: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.features[index]), np.asarray(self.labels[index])

    def dataset(self, *, training: bool, batch_size: int):
        """Batched (features float32, label int32) MindSpore dataset, like data.build_dataset's: when training,
        shuffled by the dataset seed (the same order as the image set's) and without the last partial batch."""
        rows = ds.GeneratorDataset(
            self,
            column_names=["features", "label"],
            shuffle=training,
            num_parallel_workers=1,
            python_multiprocessing=False,
        )
        return rows.batch(batch_size, drop_remainder=training)


@dataclass(frozen=True)
class CachedFeatures:
    """The features of the training set and of the evaluation set."""

    train: FeatureSet
    eval: FeatureSet


def extract(cell: nn.Cell, images, count: int, width: int, path: Path, stop: Callable[[], None]) -> FeatureSet:
    """`cell`'s (N, `width`) output for the images (at most `count`) of the unshuffled dataset `images`, stored in
    the .npy file `path` (memory-mapped: the features of a large set need not fit in memory). `stop()` is called
    after every batch and raises to end the run early."""
    cell.set_train(False)
    features = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, width))
    labels = np.empty(count, dtype=np.int32)
    offset = 0
    for batch, batch_labels in images.create_tuple_iterator(num_epochs=1):
        size = batch_labels.shape[0]
        features[offset : offset + size] = cell(batch).asnumpy()
        labels[offset : offset + size] = batch_labels.asnumpy()
        offset += size
        stop()
    features.flush()
    return FeatureSet(features[:offset], labels[:offset])


def cache(
    network: WithHead,
    train_images,
    eval_images,
    counts: tuple[int, int],
    folder: Path,
    progress: Progress,
    stop: Callable[[], None],
) -> CachedFeatures:
    """Run the frozen backbone once over the (unshuffled) training and evaluation images; reports
    `features_cached`."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    cell = PooledFeatures(network)
    width = network.head.dense_layer().in_channels
    cached = CachedFeatures(
        extract(cell, train_images, counts[0], width, folder / "train.npy", stop),
        extract(cell, eval_images, counts[1], width, folder / "eval.npy", stop),
    )
    progress.emit(
        "features_cached",
        train_images=len(cached.train),
        eval_images=len(cached.eval),
        width=width,
        seconds=round(time.perf_counter() - started, 3),
    )
    return cached
