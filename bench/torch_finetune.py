"""The PyTorch side of bench/time_to_accuracy.py: the demo's fine-tune (GoogleNet pretrained on digits 0-4, a new
5-class head trained on digits 5-9) in plain PyTorch and torchvision, run with the interpreter of .venv-torch
(`make bench-torch-venv`), never in a MindSpore process.

    .venv-torch/bin/python bench/torch_finetune.py --pretrain --train D04/train --eval D04/eval --backbone FILE \\
        --epochs 6 --lr-max 0.05
    .venv-torch/bin/python bench/torch_finetune.py --train D59/train --eval D59/eval --backbone FILE --output DIR
    .venv-torch/bin/python bench/torch_finetune.py --about

--pretrain trains torchvision.models.googlenet(num_classes=5, aux_logits=False, transform_input=False),
initialised as the job initialises its networks (truncated normal, std 0.02), from scratch and saves the weights
of its best evaluated epoch to --backbone (as the demo publishes its best checkpoint). Fine-tuning loads them,
replaces `fc` by a new Linear(1024, classes) (initialised the same way) and trains the whole network. Both use
the job's recipe: SGD with momentum, weight decay except on BatchNorm weights and biases, the warmup-cosine
learning rate set every step, RandomResizedCrop (no flip) and ImageNet normalisation for
training, Resize(size / 0.875) + CenterCrop(size) for evaluation; top-1 on the eval folder after every epoch and
(fine-tuning) torch.save of model and optimizer state to --output after every epoch. The defaults are the demo's
fine-tuning settings; the driver passes the job's own values.

Standard output: JSON lines, {"event": "start", "time": ...} before the first epoch, per epoch
{"event": "epoch", "epoch": N, "time": <time.time()>, "top1": ..., "loss": ..., "seconds": <training>,
"eval_seconds": ...}, {"event": "saved", ...} after each checkpoint, and last {"summary": {...}}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_RESIZE_RATIO = 0.875
FEATURES = 1024  # GoogleNet's channels before `fc`
PRETRAIN_CLASSES = 5  # digits 0-4


@dataclass(frozen=True)
class Recipe:
    """The training settings (the job's names, without the FT_ prefix)."""

    epochs: int
    batch_size: int
    image_size: int
    lr_init: float
    lr_max: float
    lr_end: float
    warmup_epochs: float
    momentum: float
    weight_decay: float
    label_smoothing: float
    crop_min_scale: float
    hflip: bool
    seed: int


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0))


def learning_rates(recipe: Recipe, steps_per_epoch: int) -> list[float]:
    """One rate per step: linear from lr_init to lr_max over the warmup steps, then cosine down to lr_end."""
    total = recipe.epochs * steps_per_epoch
    warmup = int(recipe.warmup_epochs * steps_per_epoch)

    def rate(step: int) -> float:
        if step < warmup:
            return recipe.lr_init + (recipe.lr_max - recipe.lr_init) * step / warmup
        cosine = (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) / 2
        return recipe.lr_end + (recipe.lr_max - recipe.lr_end) * cosine

    return [rate(step) for step in range(total)]


def loaders(train: Path, evaluation: Path, recipe: Recipe, device: torch.device) -> tuple[DataLoader, DataLoader]:
    """ImageFolder loaders: augmented and shuffled (seeded) batches for training, whole ones for evaluation."""
    size = recipe.image_size
    normalise = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    augment = [transforms.RandomResizedCrop(size, scale=(recipe.crop_min_scale, 1.0))]
    if recipe.hflip:
        augment.append(transforms.RandomHorizontalFlip())
    centre = [transforms.Resize(int(size / EVAL_RESIZE_RATIO)), transforms.CenterCrop(size)]
    common = dict(
        batch_size=recipe.batch_size,
        num_workers=usable_cpus(),
        persistent_workers=True,
        pin_memory=device.type == "cuda",
    )
    training = DataLoader(
        datasets.ImageFolder(str(train), transforms.Compose(augment + normalise)),
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(recipe.seed),
        **common,
    )
    evaluating = DataLoader(datasets.ImageFolder(str(evaluation), transforms.Compose(centre + normalise)), **common)
    return training, evaluating


def job_initialised(module: nn.Module) -> nn.Module:
    """The job's initialisation (job/models: truncated normal, std 0.02, for convolution and dense weights and the
    head's bias): torchvision's own (std 0.01) makes this recipe's learning rates act larger through BatchNorm,
    and its pretraining on digits 0-4 reached 0.86 against the job's 0.96."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(layer.weight, std=0.02)  # bounds -2, 2 as MindSpore's
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            nn.init.trunc_normal_(layer.bias, std=0.02)
    return module


def googlenet() -> nn.Module:
    model = torchvision.models.googlenet(
        num_classes=PRETRAIN_CLASSES, aux_logits=False, init_weights=False, transform_input=False
    )
    return job_initialised(model)


def sgd(model: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    """Momentum SGD; no weight decay on BatchNorm weights and biases or on biases (the one-dimensional tensors)."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.ndim > 1], "weight_decay": recipe.weight_decay},
        {"params": [p for p in parameters if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.SGD(groups, lr=recipe.lr_init, momentum=recipe.momentum)


class Training:
    """A model, its optimizer and schedule on one device, trained and evaluated one epoch at a time."""

    def __init__(self, model: nn.Module, recipe: Recipe, train: DataLoader, device: torch.device) -> None:
        self.model = model.to(device)
        self.optimizer = sgd(model, recipe)
        self.rates = learning_rates(recipe, len(train))
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.train_loader = train
        self.device = device
        self.step = 0

    def train_epoch(self) -> tuple[float, float]:
        """One pass over the training set; (mean loss, accuracy) over its images."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen = 0
        for images, labels in self.train_loader:
            images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            for group in self.optimizer.param_groups:
                group["lr"] = self.rates[self.step]
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(images)
            loss = self.loss_fn(logits, labels)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            loss_sum += loss.detach() * len(labels)
            correct += (logits.detach().argmax(dim=1) == labels).sum()
            seen += len(labels)
        return loss_sum.item() / seen, correct.item() / seen

    def top1(self, loader: DataLoader) -> float:
        self.model.eval()
        correct, seen = 0, 0
        with torch.inference_mode():
            for images, labels in loader:
                predicted = self.model(images.to(self.device, non_blocking=True)).argmax(dim=1).cpu()
                correct += int((predicted == labels).sum())
                seen += len(labels)
        return correct / seen


def fit(
    training: Training, recipe: Recipe, evaluation: DataLoader, after_epoch: Callable[[int, float], None]
) -> list[dict]:
    """Train and evaluate every epoch, printing each epoch's line, then calling after_epoch(epoch, top1)."""
    history = []
    emit(event="start", time=round(time.time(), 3), steps_per_epoch=len(training.train_loader))
    for epoch in range(1, recipe.epochs + 1):
        started = time.perf_counter()
        loss, accuracy = training.train_epoch()
        trained = time.perf_counter()
        top1 = training.top1(evaluation)
        record = {
            "epoch": epoch,
            "top1": round(top1, 6),
            "loss": round(loss, 6),
            "train_accuracy": round(accuracy, 6),
            "seconds": round(trained - started, 3),
            "eval_seconds": round(time.perf_counter() - trained, 3),
        }
        history.append(record)
        emit(event="epoch", time=round(time.time(), 3), **record)
        after_epoch(epoch, top1)
    return history


def checkpointer(training: Training, output: Path) -> Callable[[int, float], None]:
    """After every epoch: model and optimizer state (momentum, step) to output/epoch-NNN.pt."""
    output.mkdir(parents=True, exist_ok=True)

    def save(epoch: int, top1: float) -> None:
        started = time.perf_counter()
        state = {
            "epoch": epoch,
            "step": training.step,
            "top1": top1,
            "model": training.model.state_dict(),
            "optimizer": training.optimizer.state_dict(),
        }
        torch.save(state, output / f"epoch-{epoch:03d}.pt")
        emit(event="saved", time=round(time.time(), 3), epoch=epoch, seconds=round(time.perf_counter() - started, 3))

    return save


def best_keeper(training: Training, best: dict) -> Callable[[int, float], None]:
    """After every epoch: a CPU copy of the weights if this epoch's top-1 is the best so far (into `best`)."""

    def keep(epoch: int, top1: float) -> None:
        if top1 > best.get("top1", -1.0):
            state = {key: value.detach().cpu().clone() for key, value in training.model.state_dict().items()}
            best.update(epoch=epoch, top1=top1, state=state)

    return keep


def pretrain(options: argparse.Namespace, recipe: Recipe, device: torch.device) -> dict:
    """GoogleNet from scratch on the pretraining digits; its best epoch's weights saved to --backbone."""
    train, evaluation = loaders(options.train, options.eval, recipe, device)
    torch.manual_seed(recipe.seed)
    training = Training(googlenet(), recipe, train, device)
    best: dict = {}
    history = fit(training, recipe, evaluation, best_keeper(training, best))
    options.backbone.parent.mkdir(parents=True, exist_ok=True)
    staging = options.backbone.with_name(options.backbone.name + ".part")
    torch.save(best["state"], staging)
    staging.replace(options.backbone)
    return summary(history, {"best_top1": best["top1"], "best_epoch": best["epoch"], "backbone": str(options.backbone)})


def fine_tune(options: argparse.Namespace, recipe: Recipe, device: torch.device) -> dict:
    """The pretrained backbone with a new head, trained on the fine-tuning digits, saved every epoch."""
    train, evaluation = loaders(options.train, options.eval, recipe, device)
    torch.manual_seed(recipe.seed)
    model = googlenet()
    model.load_state_dict(torch.load(options.backbone, map_location="cpu", weights_only=True))
    model.fc = job_initialised(nn.Linear(FEATURES, len(train.dataset.classes)))
    training = Training(model, recipe, train, device)
    history = fit(training, recipe, evaluation, checkpointer(training, options.output))
    best = max(history, key=lambda record: record["top1"])
    return summary(history, {"best_top1": best["top1"], "best_epoch": best["epoch"], "output": str(options.output)})


def summary(history: list[dict], extra: dict) -> dict:
    return {"top1": history[-1]["top1"], **extra, "epochs": len(history)}


def about() -> dict:
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.is_available(),
    }


def choose_device(requested: str) -> torch.device:
    """cuda when asked for and present; the CPU otherwise."""
    if requested == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: training on the CPU", file=sys.stderr)
        return torch.device("cpu")
    return torch.device(requested)


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--about", action="store_true", help="print versions and the CPU capability, then exit")
    parser.add_argument("--pretrain", action="store_true", help="train from scratch and save --backbone")
    parser.add_argument("--train", type=Path, help="training ImageFolder")
    parser.add_argument("--eval", type=Path, help="evaluation ImageFolder")
    parser.add_argument("--backbone", type=Path, help="the pretrained weights (written by --pretrain)")
    parser.add_argument("--output", type=Path, help="checkpoint directory (fine-tuning)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: if present, else the CPU")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--lr-init", type=float, default=0.0)
    parser.add_argument("--lr-max", type=float, default=0.02)
    parser.add_argument("--lr-end", type=float, default=0.0)
    parser.add_argument("--warmup-epochs", type=float, default=1.0)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=4e-5)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--crop-min-scale", type=float, default=0.6)
    parser.add_argument("--hflip", action="store_true", help="random horizontal flip (off for digits)")
    parser.add_argument("--seed", type=int, default=1)
    return parser


def main() -> None:
    parser = arguments()
    options = parser.parse_args()
    if options.about:
        print(json.dumps(about()))
        return
    needed = ["train", "eval", "backbone"] + ([] if options.pretrain else ["output"])
    missing = [name for name in needed if getattr(options, name) is None]
    if missing:
        parser.error("missing " + ", ".join(f"--{name}" for name in missing))
    recipe = Recipe(**{field: getattr(options, field) for field in Recipe.__dataclass_fields__})
    torch.set_num_threads(usable_cpus())
    device = choose_device(options.device)
    started = time.perf_counter()
    result = (pretrain if options.pretrain else fine_tune)(options, recipe, device)
    result.update(seconds=round(time.perf_counter() - started, 1), device=str(device), threads=torch.get_num_threads())
    print(json.dumps({"summary": result}), flush=True)


if __name__ == "__main__":
    main()
