"""Scaling benchmark: the same fine-tune (the real `python -m job`) as one training process and as two
data-parallel processes started by msrun, with the same global batch.

    .venv/bin/python bench/scaling.py [--runs 5] [--epochs 4] [--json results.json]

Throughput is rank 0's images/s over the global batch, epochs after the first (graph compilation) only.
Scaling ratio = two-process throughput / one-process throughput; on a machine with N cores both layouts share
the same N cores, so the ratio shows the cost of the data-parallel machinery more than a speed-up.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import HUB_ID, Ratio, describe, machine, prepare_workload, run_job, write_json

from contract.settings import DeviceTarget
from job.device import prepare_process

GLOBAL_BATCH = 32


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _throughput(environment: dict[str, str]) -> float:
    """Median images/s (global) of the epochs after the first, from rank 0's progress lines."""
    run = run_job({**environment, "FT_MASTER_PORT": str(_free_port())})
    return statistics.median(event["images_per_second"] for event in run.epoch_events())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fine-tunes per layout")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fine-tune (the first is not counted)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args()
    prepare_process(DeviceTarget.CPU)
    host = machine()
    samples: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as scratch:
        work = Path(scratch)
        train, evaluation, hub_root = prepare_workload(work, list(range(10)))
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FT_")},
            "FT_MODEL": HUB_ID,
            "FT_HUB_MIRROR": str(hub_root),
            "FT_HUB_CACHE": str(work / "hub-cache"),
            "FT_TRAIN_DATA": str(train),
            "FT_EVAL_DATA": str(evaluation),
            "FT_EPOCHS": str(arguments.epochs),
            "FT_IMAGE_SIZE": "32",
            "FT_BATCH_SIZE": str(GLOBAL_BATCH),
            "FT_HFLIP": "false",
            "FT_WARMUP_EPOCHS": "1",
            "FT_LOG_EVERY": "1000",
            "FT_EXPORT_MINDIR": "false",
            "FT_SCRATCH_DIR": str(work),
        }
        for run in range(arguments.runs):  # interleaved, so drift hits both alike
            for processes in samples:
                samples[processes].append(
                    _throughput(
                        {
                            **base,
                            "FT_DEVICES_PER_WORKER": str(processes),
                            "FT_OUTPUT": str(work / f"out-{processes}-{run}"),
                        }
                    )
                )
    series = {f"{processes} process{'es' if processes > 1 else ''}": values for processes, values in samples.items()}
    medians = {name: statistics.median(values) for name, values in series.items()}
    ratio = Ratio("2 processes", "1 process")
    print(f"machine: {describe(host)}")
    print(
        f"fine-tune: GoogleNet, digits 0-9 at 32x32, global batch {GLOBAL_BATCH}, {arguments.epochs} epochs, "
        f"{arguments.runs} runs per layout; both layouts share the {os.cpu_count()} cores"
    )
    for name, values in series.items():
        print(f"{name:<12} median {medians[name]:7.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in values)})")
    print(ratio.line(medians))
    write_json(
        arguments.json,
        "scaling",
        host,
        {"global_batch": GLOBAL_BATCH, "epochs": arguments.epochs, "image_size": 32},
        "images/s",
        series,
        [ratio],
    )


if __name__ == "__main__":
    main()
