"""Data-parallel training inside msrun's workers: who this process is, and keeping ranks in step.

msrun starts one scheduler and one worker per device with MS_ROLE set; a process started any other way is
the only rank of its run, and every operation here is then a no-op.
"""

from __future__ import annotations

import functools
import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from collections.abc import Iterator

import numpy as np

from contract.settings import Settings
from job.errors import JobError

ROLE_VARIABLE = "MS_ROLE"  # set by msrun for the processes it starts
SCHEDULER = "MS_SCHED"
WORKER = "MS_WORKER"


def role() -> str | None:
    return os.environ.get(ROLE_VARIABLE)


@dataclass(frozen=True)
class Topology:
    """This process's place among the training processes: rank 0 alone reads and writes the output."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_primary(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        """Return once every rank got here."""
        if self.is_distributed:
            _sum_over_ranks(np.zeros(1, dtype=np.float32))

    def broadcast_int(self, value: int) -> int:
        """Rank 0's `value`, on every rank."""
        if not self.is_distributed:
            return value
        from mindspore import Tensor

        return int(_broadcast(Tensor(np.array([value], dtype=np.int64))).asnumpy()[0])

    def broadcast_parameters(self, cell) -> None:
        """Give every parameter of `cell` rank 0's value: weights, freshly initialised head, optimizer state."""
        if self.is_distributed:
            for parameter in cell.get_parameters():
                parameter.set_data(_broadcast(parameter.value()))

    def average_batch_statistics(self, cell) -> None:
        """Replace each rank's BatchNorm running statistics (computed on its own shard) by their mean over all
        ranks, so every rank, and rank 0's checkpoint, holds statistics of the whole data set."""
        if not self.is_distributed:
            return
        from mindspore import Tensor, nn

        statistics = [
            parameter
            for _, bn in cell.cells_and_names()
            if isinstance(bn, nn.BatchNorm2d) and bn.use_batch_statistics is not False
            for parameter in (bn.moving_mean, bn.moving_variance)
        ]
        if not statistics:
            return
        values = [parameter.asnumpy() for parameter in statistics]
        flat = _sum_over_ranks(np.concatenate([value.ravel() for value in values])) / self.size
        offset = 0
        for parameter, value in zip(statistics, values):
            parameter.set_data(Tensor(flat[offset : offset + value.size].reshape(value.shape).astype(value.dtype)))
            offset += value.size

    def check_identical(self, cell) -> str:
        """The digest of `cell`'s parameters; raises if any rank's differs (ranks must never drift apart)."""
        digest = parameter_digest(cell)
        if self.is_distributed:
            from mindspore import Tensor

            mine = np.array([int(digest[i : i + 6], 16) for i in range(0, 24, 6)], dtype=np.float32)  # exact
            primary = _broadcast(Tensor(mine)).asnumpy()
            if _sum_over_ranks(np.array([float(not np.array_equal(mine, primary))], dtype=np.float32))[0]:
                raise JobError(
                    f"rank {self.rank}: parameters differ between ranks after training (digest "
                    f"{digest[:16]}); the data-parallel setup is broken, please report it"
                )
        return digest

    @contextmanager
    def pod_leader_first(self) -> Iterator[None]:
        """Run the block on each pod's first rank before the pod's other ranks, so shared caches (hub, data)
        are filled once and then only read. Every rank calls this the same number of times."""
        if self.local_rank != 0:
            self.barrier()
        yield
        if self.local_rank == 0:
            self.barrier()


SINGLE = Topology()


def parameter_digest(cell) -> str:
    """sha256 over every parameter's name and bytes, in name order."""
    digest = hashlib.sha256()
    for parameter in sorted(cell.get_parameters(), key=lambda p: p.name):
        digest.update(parameter.name.encode())
        digest.update(parameter.asnumpy().tobytes())
    return digest.hexdigest()


def _broadcast(tensor):
    from mindspore.communication import GlobalComm, comm_func

    result = comm_func.broadcast(tensor, src=0, group=GlobalComm.WORLD_COMM_GROUP)
    return result[0] if isinstance(result, tuple) else result


@functools.cache
def _sum_cell():
    """A compiled AllReduce (sum is the one reduction MindSpore runs on CPU)."""
    from mindspore import nn, ops

    class SumOverRanks(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.all_reduce = ops.AllReduce()

        def construct(self, x):
            return self.all_reduce(x)

    return SumOverRanks()


def _sum_over_ranks(values: np.ndarray) -> np.ndarray:
    """Element-wise sum over all ranks."""
    from mindspore import Tensor

    return _sum_cell()(Tensor(values)).asnumpy()


def device_index(settings: Settings) -> int:
    """The device this process trains on: msrun gives each worker of a pod its own (DEVICE_ID)."""
    return int(os.environ.get("DEVICE_ID", "0")) if role() == WORKER else settings.device_id


def join(settings: Settings) -> Topology:
    """Join msrun's cluster when started by it (after the device is configured); else the single rank."""
    if role() is None:
        return SINGLE
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    init()
    size = get_group_size()
    if size != settings.world_size:
        raise JobError(
            f"msrun started {size} training processes but FT_WORKERS x FT_DEVICES_PER_WORKER is "
            f"{settings.world_size}; start the job with `python -m job`, which runs msrun itself"
        )
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=size)
    rank = get_rank()
    return Topology(rank=rank, size=size, local_rank=rank % settings.devices_per_worker)


def serve_scheduler() -> None:
    """msrun's scheduler process runs the job's command too: it only hosts the cluster until training ends.

    When a worker fails the scheduler fails too; the worker's own error is the one that explains it."""
    from mindspore.communication import init

    try:
        init()
    except RuntimeError as exc:
        raise JobError(f"msrun's scheduler stopped: {str(exc).splitlines()[0]}") from None
