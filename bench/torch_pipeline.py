"""The torchvision side of bench/jpeg_pipeline.py: the usual torchvision training input pipeline over an ImageFolder
tree, run with the interpreter of .venv-torch (`make bench-torch-venv`), so PyTorch never shares a process with
MindSpore. bench/jpeg_pipeline.py starts it and talks to it; by hand:

    .venv-torch/bin/python bench/torch_pipeline.py

One JSON request per line on standard input, one JSON answer per line on standard output (nothing runs between
requests, so the caller can interleave its own measurements with these):

    {"op": "about"}  -> torch and torchvision versions, the image backend, Pillow's version, whether pillow-simd
                        and accimage are installed, the libjpeg-turbo (or libjpeg) version Pillow decodes with
    {"op": "load", "root": "/path/train", "image_size": 224, "min_scale": 0.08, "batch_size": 32, "workers": 2}
                     -> {"images": ..., "classes": ...}: torchvision.datasets.ImageFolder(root) with
                        RandomResizedCrop(image_size, scale=(min_scale, 1)), RandomHorizontalFlip, ToTensor,
                        Normalize(ImageNet mean and std); PIL decoding (the default loader)
    {"op": "epoch"}  -> {"images": ..., "seconds": ..., "images_per_second": ..., "cpu_seconds": ...}: one full
                        pass (CPU seconds of this process and its workers) of
                        DataLoader(batch_size, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=False): the workers start with the pass and end with it

A failed request answers {"error": "..."}; the end of standard input ends the process.
"""

from __future__ import annotations

import importlib.util
import resource
import time
from importlib.metadata import PackageNotFoundError, version

import PIL
import torch
import torchvision
from PIL import features
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from peer import serve

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the DataLoader's workers, joined at the end of
    each pass)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def _installed(distribution: str) -> bool:
    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


class Pipeline:
    def __init__(self) -> None:
        self.loader: DataLoader | None = None

    def about(self) -> dict:
        return {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "image_backend": torchvision.get_image_backend(),
            "pillow": PIL.__version__,
            "pillow_simd": _installed("pillow-simd"),
            "accimage": importlib.util.find_spec("accimage") is not None,
            "libjpeg_turbo": features.version("libjpeg_turbo") if features.check_feature("libjpeg_turbo") else None,
            "libjpeg": features.version("jpg"),
        }

    def load(self, root: str, image_size: int, min_scale: float, batch_size: int, workers: int) -> dict:
        transform = transforms.Compose(
            [
                transforms.RandomResizedCrop(image_size, scale=(min_scale, 1.0)),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )
        dataset = datasets.ImageFolder(root, transform=transform)
        torch.manual_seed(0)
        self.loader = DataLoader(
            dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=False
        )
        return {"images": len(dataset), "classes": len(dataset.classes)}

    def epoch(self) -> dict:
        if self.loader is None:
            raise ValueError("no pipeline loaded")
        started, cpu = time.perf_counter(), cpu_seconds()
        images = 0
        for batch, _ in self.loader:
            images += batch.shape[0]
        seconds = time.perf_counter() - started
        return {
            "images": images,
            "seconds": seconds,
            "images_per_second": images / seconds,
            "cpu_seconds": cpu_seconds() - cpu,
        }


def main() -> None:
    pipeline = Pipeline()
    serve({"about": pipeline.about, "load": pipeline.load, "epoch": pipeline.epoch})


if __name__ == "__main__":
    main()
