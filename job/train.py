"""Fine-tuning: the network with its new head, the optimizer, the training step and the epoch loop."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from contract.settings import AmpLevel, Settings
from job.errors import BadInput
from job.feeds import Feed
from job.models.heads import WithHead
from job.progress import Progress
from job.schedule import warmup_cosine

NO_DECAY_SUFFIXES = (".gamma", ".beta", ".bias")


def fine_tune_network(backbone: nn.Cell, num_classes: int, freeze_backbone: bool) -> nn.Cell:
    """Backbone + new head (mean over H, W -> flatten -> Dense(backbone's channels, num_classes)) with the
    architecture's model-zoo names.

    A frozen backbone keeps its weights and uses its stored BatchNorm statistics, so it is a fixed function.
    """
    if freeze_backbone:
        for parameter in backbone.get_parameters():
            parameter.requires_grad = False
        for _, cell in backbone.cells_and_names():
            if isinstance(cell, nn.BatchNorm2d):
                cell.use_batch_statistics = False
    return WithHead(backbone, num_classes)


def build_optimizer(
    network: nn.Cell, learning_rates: list[float], momentum: float, weight_decay: float
) -> nn.Optimizer:
    """Momentum over the trainable parameters; no weight decay on BatchNorm gamma/beta or biases."""
    trainable = network.trainable_params()
    decay = [p for p in trainable if not p.name.endswith(NO_DECAY_SUFFIXES)]
    no_decay = [p for p in trainable if p.name.endswith(NO_DECAY_SUFFIXES)]
    groups = [
        group
        for group in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0})
        if group["params"]
    ]
    return nn.Momentum(groups, learning_rate=ms.Tensor(np.array(learning_rates, dtype=np.float32)), momentum=momentum)


class TrainStep(nn.Cell):
    """One optimisation step; returns (loss, correct predictions in the batch).

    With `world_size` > 1 (data parallel), gradients are averaged over all ranks before the update, so every
    rank applies the same one, and the loss and count cover the global batch.
    """

    def __init__(
        self, network: nn.Cell, loss_fn: nn.Cell, optimizer: nn.Optimizer, loss_scaler=None, world_size: int = 1
    ) -> None:
        super().__init__(auto_prefix=False)
        self.network = network
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.loss_scaler = loss_scaler
        self.world_size = world_size
        self.distributed = world_size > 1
        if self.distributed:
            self.grad_reducer = nn.DistributedGradReducer(optimizer.parameters, mean=True, degree=world_size)
            self.all_reduce = ops.AllReduce()
        if loss_scaler is not None:  # registered here, so checkpoints carry the scale and resume with it
            self.loss_scale = loss_scaler.scale_value
            self.loss_scale_counter = loss_scaler.counter
        self.grad_fn = ms.value_and_grad(self.forward, None, optimizer.parameters, has_aux=True)

    def forward(self, images, labels):
        logits = self.network(images)
        loss = self.loss_fn(logits.astype(ms.float32), labels)
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        return loss, logits

    def construct(self, images, labels):
        (loss, logits), grads = self.grad_fn(images, labels)
        if self.distributed:
            grads = self.grad_reducer(grads)
        if self.loss_scaler is not None:
            loss = self.loss_scaler.unscale(loss)
            grads = self.loss_scaler.unscale(grads)
            finite = ms.amp.all_finite(grads)
            self.loss_scaler.adjust(finite)
            if finite:
                loss = ops.depend(loss, self.optimizer(grads))
        else:
            loss = ops.depend(loss, self.optimizer(grads))
        correct = (logits.argmax(axis=1) == labels).astype(ms.float32).sum()
        if self.distributed:
            loss = self.all_reduce(loss) / self.world_size
            correct = self.all_reduce(correct)
        return loss, correct


class EpochTotals(nn.Cell):
    """An epoch's sums on the device, updated after every step without a host read: loss x images, correct
    predictions, and a copy of the optimizer's step counter (steps skipped by the loss scaler do not count)."""

    def __init__(self, global_step: ms.Parameter, world_size: int) -> None:
        super().__init__(auto_prefix=False)
        self.sums = ms.Parameter(ms.Tensor(np.zeros(3, dtype=np.float32)), name="epoch_totals", requires_grad=False)
        self.global_step = global_step
        self.world_size = world_size

    def construct(self, loss, correct, labels):
        batch = labels.shape[0] * self.world_size
        summed = self.sums[:2] + ops.stack([loss.astype(ms.float32) * batch, correct])
        return ops.assign(self.sums, ops.concat([summed, self.global_step.astype(ms.float32)]))

    def reset(self) -> None:
        self.sums.set_data(ms.Tensor(np.zeros(3, dtype=np.float32)))

    def read(self) -> tuple[float, float, int]:
        """The one host read: (loss x images, correct predictions, the optimizer's step counter)."""
        loss_sum, correct_sum, global_step = self.sums.asnumpy().tolist()
        return loss_sum, correct_sum, int(global_step)


class StepAndSum(nn.Cell):
    """A training step followed by the epoch sums' update: one graph, dispatched once per step."""

    def __init__(self, step: TrainStep, totals: EpochTotals) -> None:
        super().__init__(auto_prefix=False)
        self.step = step
        self.totals = totals
        self.set_train()

    def construct(self, images, labels):
        loss, correct = self.step(images, labels)
        return self.totals(loss, correct, labels)


@dataclass
class EpochRecord:
    """One epoch of the training history, as written to metrics.json."""

    epoch: int
    loss: float
    train_accuracy: float
    lr: float
    seconds: float
    images_per_second: float
    eval: dict = field(default_factory=dict)


def _train_step(network: nn.Cell, optimizer: nn.Optimizer, settings: Settings, world_size: int) -> TrainStep:
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    loss_scaler = None
    if settings.amp_level is not AmpLevel.O0:
        network = ms.amp.auto_mixed_precision(network, settings.amp_level.value)
        if settings.amp_level in (AmpLevel.O2, AmpLevel.O3):
            loss_scaler = ms.amp.DynamicLossScaler(scale_value=2.0**16, scale_factor=2, scale_window=1000)
    step = TrainStep(network, loss_fn, optimizer, loss_scaler, world_size)
    step.set_train()
    return step


def write_checkpoint(snapshot: list[dict], path: Path) -> None:
    """A Trainer.snapshot as a checkpoint file (what Trainer.restore loads)."""
    path.parent.mkdir(exist_ok=True)  # not its parents: a write after the run's scratch is gone fails
    ms.save_checkpoint(snapshot, str(path))


class Trainer:
    """The optimisation state of one run: network, optimizer (with its step counter) and training step.

    `steps_per_epoch` counts global batches (FT_BATCH_SIZE images over all `world_size` ranks).
    """

    def __init__(self, network: nn.Cell, settings: Settings, steps_per_epoch: int, world_size: int = 1) -> None:
        self.network = network
        self.settings = settings
        self.world_size = world_size
        self.steps_per_epoch = steps_per_epoch
        self.rates = warmup_cosine(
            settings.lr_init, settings.lr_max, settings.lr_end, settings.warmup_epochs, settings.epochs, steps_per_epoch
        )
        self.optimizer = build_optimizer(network, self.rates, settings.momentum, settings.weight_decay)
        self.step = _train_step(network, self.optimizer, settings, world_size)
        self.totals = EpochTotals(self.optimizer.global_step, world_size)
        self.active_step = self.step  # what train_epoch runs
        self.run_step = StepAndSum(self.active_step, self.totals)
        self.steps_taken: int | None = None  # counted on the host from the first epoch of this attempt on

    def train_on_features(self) -> None:
        """From now on train_epoch takes pooled backbone features (job.features), not images: a step over the
        head's classifier alone (in the precision the network's mixed precision gave it), sharing with `step` the
        parameters, the optimizer (moments, step counter: the schedule) and the loss scale; `step` still saves
        and restores the whole network."""
        self.active_step = TrainStep(
            self.network.head.dense_layer(), self.step.loss_fn, self.optimizer, self.step.loss_scaler, self.world_size
        )
        self.active_step.set_train()
        self.run_step = StepAndSum(self.active_step, self.totals)

    @property
    def global_step(self) -> int:
        return int(self.optimizer.global_step.asnumpy().reshape(-1)[0])

    def snapshot(self) -> list[dict]:
        """Host copies of the network and optimizer state (momentum, step counter, hence the learning-rate
        position): the only part of saving that needs the device. write_checkpoint writes it to a file, on any
        thread, while training goes on (ms.Tensor copies the array)."""
        return [{"name": p.name, "data": ms.Tensor(p.asnumpy())} for p in self.step.get_parameters()]

    def restore(self, path: Path) -> None:
        missing, _ = ms.load_param_into_net(self.step, ms.load_checkpoint(str(path)), strict_load=True)
        if missing:
            raise BadInput(
                f"checkpoint {path} lacks {len(missing)} parameters of this run ({missing[0]} ...); it "
                f"was written by another network or optimizer"
            )

    def train_epoch(self, epoch: int, feed: Feed, progress: Progress, stop: Callable[[], None]) -> EpochRecord:
        """One epoch's steps from `feed`; `stop()` is called after every step and raises to end the run early.

        Nothing is read back from the device between progress windows: the loss and correct predictions are
        summed on the device (EpochTotals) and read, with the optimizer's step counter, once per FT_LOG_EVERY
        steps and at the end of the epoch."""
        self.network.set_train(True)
        if self.steps_taken is None:  # once per attempt, after any restore: where the optimizer's counter stands
            self.steps_taken = self.global_step
        totals = self.totals
        totals.reset()
        started = window_started = time.perf_counter()
        seen = window_seen = 0
        read = None
        for batch in feed.steps(epoch, self.run_step):
            seen += batch
            window_seen += batch
            self.steps_taken += 1
            stop()
            read = None
            if self.steps_taken % self.settings.log_every == 0:
                read = totals.read()
                loss_sum, correct_sum, global_step = read
                now = time.perf_counter()
                progress.emit(
                    "step",
                    epoch=epoch,
                    step=global_step,
                    loss=round(loss_sum / seen, 5),
                    accuracy=round(correct_sum / seen, 5),
                    lr=self.rates[max(global_step, 1) - 1],
                    images_per_second=round(window_seen / (now - window_started), 2),
                )
                window_started, window_seen = now, 0
        loss_sum, correct_sum, global_step = read or totals.read()  # the last step's window read, if it had one
        seconds = time.perf_counter() - started
        return EpochRecord(
            epoch=epoch,
            loss=loss_sum / seen,
            train_accuracy=correct_sum / seen,
            lr=self.rates[max(global_step, 1) - 1],
            seconds=round(seconds, 3),
            images_per_second=round(seen / seconds, 2),
        )
