"""Choosing the device (CPU, GPU, Ascend) and making runs repeatable."""

from __future__ import annotations

import os

from contract.settings import DeviceTarget, Settings
from job.cpus import process_share


def prepare_process(target: DeviceTarget) -> None:
    """Environment that must be set before MindSpore is imported; explicit user settings win.

    On CPUs with AVX-512, oneDNN 3.10 (bundled with MindSpore 2.10) runs NCHW convolutions larger than 1x1
    with its reference kernel, about 100x slower than with the AVX2 kernels, so the ISA is capped at AVX2.
    """
    os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ log: errors only
    if target is DeviceTarget.CPU:
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")


def _limit_op_threads(count: int) -> None:
    """MindSpore's CPU kernel threads (25 unless set, whatever the pod's CPU limit); settable once per process,
    so a second run in one process keeps the first one's count."""
    import mindspore as ms

    try:
        ms.device_context.cpu.op_tuning.threads_num(count)
    except RuntimeError:  # "can not be set repeatedly"
        pass


def use_device(target: DeviceTarget, device_id: int, processes: int = 1) -> None:
    """GRAPH mode on the given device; on the CPU, this process's share of the CPUs among `processes`."""
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE)
    if target is DeviceTarget.CPU:
        ms.set_device("CPU")
        _limit_op_threads(process_share(processes))  # the pod's processes share its CPUs
    else:
        ms.set_device(target.value, device_id)


def configure(settings: Settings, device_id: int) -> None:
    """GRAPH mode on the given device, with seeded weights, shuffling and augmentation."""
    import mindspore as ms
    import mindspore.dataset as ds

    use_device(settings.device_target, device_id, settings.devices_per_worker)
    ms.set_seed(settings.seed)
    ds.config.set_seed(settings.seed)
