"""Tracking benchmark: the cost of TensorBoard event files and MLflow logging on training throughput.

    .venv/bin/python bench/tracking.py [--runs 3] [--json PATH]

The same short fine-tune (digits, 32x32, a progress window every 10 steps) runs untracked (FT_TENSORBOARD=false),
with TensorBoard, and with TensorBoard and MLflow (a real `mlflow server` on 127.0.0.1 with a SQLite store, the
one the tests use), interleaved. Prints the median training throughput of each (images/s over the epochs after
the first, which compiles) and the ratios tracked / untracked (target >= 0.98), after one warm-up run that is
not counted. The MLflow server shares this machine's cores with the training, which a remote server would not;
its CPU seconds during each tracked run (with its worker processes) are printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the MLflow server harness the tests use

from mlflowserver import MlflowServer  # noqa: E402

from workload import HUB_ID, Ratio, describe, machine, prepare_workload, run_job, write_json  # noqa: E402

from job.device import prepare_process  # noqa: E402
from contract.settings import DeviceTarget  # noqa: E402

FINE_TUNE = {
    "FT_MODEL": HUB_ID,
    "FT_EPOCHS": "8",
    "FT_IMAGE_SIZE": "32",
    "FT_BATCH_SIZE": "16",
    "FT_HFLIP": "false",
    "FT_CROP_MIN_SCALE": "0.6",
    "FT_WARMUP_EPOCHS": "1",
    "FT_LOG_EVERY": "10",
    "FT_EXPORT_MINDIR": "false",
}
KINDS = ("untracked", "tensorboard", "tensorboard + mlflow")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process and its children (the server's uvicorn worker) have used."""
    import psutil

    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fine-tunes per kind")
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args()
    prepare_process(DeviceTarget.CPU)
    host = machine()
    series: dict[str, list[float]] = {kind: [] for kind in KINDS}
    windows: list[int] = []
    server_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as scratch:
        work = Path(scratch)
        train, evaluation, hub_root = prepare_workload(work, [5, 6, 7, 8, 9])
        server = MlflowServer(work / "mlflow")
        server.start()
        try:
            base = {
                **{k: v for k, v in os.environ.items() if not k.startswith("FT_")},
                **FINE_TUNE,
                "FT_HUB_MIRROR": str(hub_root),
                "FT_HUB_CACHE": str(work / "hub-cache"),
                "FT_TRAIN_DATA": str(train),
                "FT_EVAL_DATA": str(evaluation),
            }
            tracking = {
                "untracked": {"FT_TENSORBOARD": "false"},
                "tensorboard": {},
                "tensorboard + mlflow": {"FT_MLFLOW_TRACKING_URI": server.uri},
            }
            run_job({**base, "FT_OUTPUT": str(work / "warm-up")})  # page cache, compile cache: not measured
            for run in range(arguments.runs):  # interleaved, so drift hits every kind alike
                for kind in KINDS:
                    assert server.process is not None  # started above
                    before = _cpu_seconds(server.process.pid)
                    done = run_job({**base, **tracking[kind], "FT_OUTPUT": str(work / f"{kind}-{run}")})
                    if kind == "tensorboard + mlflow":
                        server_cpu.append(_cpu_seconds(server.process.pid) - before)
                    epochs = done.epoch_events()
                    series[kind].append(sum(e["images_per_second"] for e in epochs) / len(epochs))
                    windows.append(sum(1 for e in done.events if e.get("event") == "step"))
        finally:
            server.stop()
    medians = {kind: statistics.median(values) for kind, values in series.items()}
    ratios = [Ratio("tensorboard", "untracked", 0.98), Ratio("tensorboard + mlflow", "untracked", 0.98)]
    print(f"machine: {describe(host)}")
    print(
        f"{arguments.runs} fine-tunes per kind ({FINE_TUNE['FT_EPOCHS']} epochs, digits 5-9, 32x32, batch 16, "
        f"{statistics.median(windows):.0f} progress windows per run); training images/s over epochs 2+"
    )
    for kind in KINDS:
        runs = ", ".join(f"{value:.1f}" for value in series[kind])
        print(f"{kind:<22} median {medians[kind]:7.1f} images/s  (runs: {runs})")
    print(f"MLflow server CPU per tracked run: median {statistics.median(server_cpu):.2f} s (it shares the cores)")
    for ratio in ratios:
        print(ratio.line(medians))
    write_json(
        arguments.json,
        "tracking",
        host,
        {key: FINE_TUNE[key] for key in ("FT_EPOCHS", "FT_IMAGE_SIZE", "FT_BATCH_SIZE", "FT_LOG_EVERY")},
        "images/s",
        series,
        ratios,
        {"mlflow_server_cpu_seconds": server_cpu},
    )


if __name__ == "__main__":
    main()
