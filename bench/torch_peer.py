"""The PyTorch side of bench/zoo.py: torchvision's networks in a plain PyTorch loop, run with the interpreter of
.venv-torch (`make bench-torch-venv`), so PyTorch never shares a process with MindSpore (their OpenMP and oneDNN
runtimes conflict). bench/zoo.py starts it and talks to it; by hand:

    .venv-torch/bin/python bench/torch_peer.py --threads 2

It reads one JSON request per line on standard input and answers each with one JSON line on standard output, so
the caller can interleave its own measurements with these (it does nothing between requests):

    {"op": "about"}  -> {"torch": ..., "torchvision": ..., "threads": ..., "cpu_capability": ...}
    {"op": "load", "model": "resnet18", "num_classes": 10, "image_size": 224, "batch_size": 16, "lr": 0.01,
     "momentum": 0.9, "weight_decay": 4e-05, "label_smoothing": 0.0}
                     -> {"model": "resnet18", "parameters": ...}: torchvision.models.<model>(num_classes=...) with
                        random weights, random images and labels of that shape, SGD with momentum (no weight decay
                        on biases and BatchNorm, as the job's optimizer), CrossEntropyLoss
    {"op": "train", "steps": 10}  -> {"images_per_second": ...}: model.train(); per step zero_grad, forward,
                                     loss, backward, optimizer.step on the same random batch
    {"op": "infer", "steps": 10}  -> {"images_per_second": ...}: model.eval() under torch.inference_mode()

A failed request answers {"error": "..."}; the end of standard input ends the process.
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision

from peer import serve

# torchvision builders' arguments beyond num_classes: no auxiliary classifiers (the job's networks have none),
# explicit init_weights (random weights without the warning about its default)
EXTRA_ARGUMENTS = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


class Peer:
    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None

    def about(self) -> dict:
        return {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": torch.backends.mkldnn.is_available(),
        }

    def load(
        self,
        model: str,
        num_classes: int,
        image_size: int,
        batch_size: int,
        lr: float,
        momentum: float,
        weight_decay: float,
        label_smoothing: float,
    ) -> dict:
        self.model = None  # the previous network's memory goes before the next one is built
        if model not in torchvision.models.list_models(module=torchvision.models):
            raise ValueError(f"torchvision has no classification model {model!r}")
        torch.manual_seed(0)
        network = torchvision.models.get_model(
            model, weights=None, num_classes=num_classes, **EXTRA_ARGUMENTS.get(model, {})
        )
        trainable = [parameter for parameter in network.parameters() if parameter.requires_grad]
        groups = [
            {"params": [p for p in trainable if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0},  # biases, BatchNorm
        ]
        self.optimizer = torch.optim.SGD([group for group in groups if group["params"]], lr=lr, momentum=momentum)
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.images = torch.randn(batch_size, 3, image_size, image_size)
        self.labels = torch.randint(0, num_classes, (batch_size,))
        self.model = network
        return {"model": model, "parameters": sum(p.numel() for p in network.parameters())}

    def _network(self) -> torch.nn.Module:
        if self.model is None:
            raise ValueError("no model loaded")
        return self.model

    def train(self, steps: int) -> dict:
        network = self._network()
        network.train()
        started = time.perf_counter()
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(network(self.images), self.labels)
            loss.backward()
            self.optimizer.step()
            loss.item()  # as the job reads each step's loss
        return {"images_per_second": steps * len(self.labels) / (time.perf_counter() - started)}

    def infer(self, steps: int) -> dict:
        network = self._network()
        network.eval()
        started = time.perf_counter()
        with torch.inference_mode():
            for _ in range(steps):
                network(self.images)
        return {"images_per_second": steps * len(self.labels) / (time.perf_counter() - started)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, required=True, help="torch.set_num_threads")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    peer = Peer()
    serve({"about": peer.about, "load": peer.load, "train": peer.train, "infer": peer.infer}, quiet=(ValueError,))


if __name__ == "__main__":
    main()
