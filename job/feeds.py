"""How training batches reach the step: read on the host (CPU), or sent to the device's queue (Ascend, GPU).

A feed runs one epoch's steps through `run_step(images, labels)` and yields the global batch size after each
step, so the trainer counts images and checks for a stop between steps without reading the device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from contract.settings import DeviceTarget

Step = Callable[[Any, Any], Any]


class Feed(Protocol):
    def steps(self, epoch: int, run_step: Step) -> Iterator[int]: ...

    def close(self) -> None: ...


class HostFeed:
    """Each epoch's dataset, built by `build(epoch)`, iterated on the host and passed to the step. The CPU's
    way (MindSpore has no dataset sink there): the data order and augmentation of an epoch depend only on what
    `build` makes of the epoch, so a resumed run repeats them exactly."""

    def __init__(self, build: Callable[[int], Any], world_size: int = 1) -> None:
        self.build = build
        self.world_size = world_size

    def steps(self, epoch: int, run_step: Step) -> Iterator[int]:
        for images, labels in self.build(epoch).create_tuple_iterator(num_epochs=1):
            run_step(images, labels)
            yield labels.shape[0] * self.world_size  # the shape is known on the host: no device read

    def close(self) -> None:
        """Nothing outlives an epoch's iteration."""


class DeviceSink:
    """MindSpore's dataset sink (Ascend, GPU): one dataset for every remaining epoch of the attempt, sent to the
    device's queue by MindSpore's transfer thread while training runs, and one compiled graph that takes the next
    batch from the queue and runs the step. The host only dispatches the graph, once per step, so stop checks stay
    per step.

    The dataset is built once, for the attempt's first epoch (`build(first_epoch)`), and its pipeline's random
    state runs on across epochs: an attempt's data is reproducible from (FT_SEED, its first epoch), but a resumed
    run's shuffle and crops differ from those an uninterrupted run would have drawn (on the CPU they do not).
    """

    def __init__(self, build: Callable[[int], Any], first_epoch: int, global_batch: int) -> None:
        self.dataset = build(first_epoch)
        self.steps_per_epoch = self.dataset.get_dataset_size()
        self.global_batch = global_batch
        self._sunk: Callable[[], Any] | None = None

    def steps(self, epoch: int, run_step: Step) -> Iterator[int]:
        """`run_step` (a Cell) must be the same in every epoch: the dataset is bound to its graph."""
        if self._sunk is None:
            import mindspore as ms

            # A JitConfig compiles queue read and step into one graph; sink_size=1 runs one step per call.
            self._sunk = ms.data_sink(run_step, self.dataset, sink_size=1, jit_config=ms.JitConfig())
        for _ in range(self.steps_per_epoch):
            self._sunk()
            yield self.global_batch

    def close(self) -> None:
        """Stop MindSpore's transfer thread (it sends without end) and free the device queue, as Model.train does
        after its last epoch, so evaluation, export and commits do not compete with a pipeline nobody reads."""
        transfer = getattr(self.dataset, "__transfer_dataset__", None)
        if transfer is not None:
            transfer.stop_send()
            transfer.release()


def for_device(
    target: DeviceTarget, build: Callable[[int], Any], first_epoch: int, global_batch: int, world_size: int
) -> Feed:
    """The dataset sink on Ascend and GPU, host feeding on the CPU."""
    if target is DeviceTarget.CPU:
        return HostFeed(build, world_size)
    return DeviceSink(build, first_epoch, global_batch)
