"""Storage benchmark: the same short fine-tune writing to a local directory and to a real S3 server
(SeaweedFS on 127.0.0.1), and checkpoint upload throughput against a plain boto3 upload_file.

    .venv/bin/python bench/storage.py [--runs 3] [--uploads 5]

Prints medians and ratios: wall time S3 / local (target <= 1.05), the job's own CPU seconds S3 / local,
and upload throughput job / plain boto3 (target >= 1.0).

The S3 server shares this machine's cores with the training it serves, which a remote store would not; the
CPU seconds the server spends during each run are printed too, and each run's wall time is split where the
job's progress events fall: before training (settings, storage checks, claim), training (first to last
epoch) and after training (final commits, results, metrics.json).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the SeaweedFS harness the tests use

from s3server import SeaweedServer  # noqa: E402

from workload import HUB_ID, JobRun, Ratio, describe, machine, prepare_workload, run_job, write_json  # noqa: E402

from job.device import prepare_process  # noqa: E402
from contract.settings import DeviceTarget  # noqa: E402

PHASES = ("before training", "training", "after training")
FINE_TUNE = {
    "FT_MODEL": HUB_ID,
    "FT_EPOCHS": "3",
    "FT_IMAGE_SIZE": "32",
    "FT_BATCH_SIZE": "32",
    "FT_HFLIP": "false",
    "FT_CROP_MIN_SCALE": "0.6",
    "FT_WARMUP_EPOCHS": "1",
    "FT_LOG_EVERY": "1000",
}


def _phases(run: JobRun) -> dict[str, float]:
    """A run's wall seconds before its `start` event, from there to its last `epoch` event, and after that."""
    start = next(event["time"] for event in run.events if event["event"] == "start")
    last_epoch = [event["time"] for event in run.events if event["event"] == "epoch"][-1]
    return dict(
        zip(PHASES, (start - run.launched_at, last_epoch - start, run.launched_at + run.wall_seconds - last_epoch))
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _line(label: str, samples: list[tuple[float, float, float]]) -> str:
    walls = ", ".join(f"{wall:.2f}" for wall, _, _ in samples)
    return (
        f"{label:<20} wall median {statistics.median(w for w, _, _ in samples):6.2f} s, job CPU median "
        f"{statistics.median(c for _, c, _ in samples):6.2f} s, S3 server CPU median "
        f"{statistics.median(s for _, _, s in samples):5.2f} s  (walls: {walls})"
    )


def _shared_cores_note(
    local: list[tuple[float, float, float]], remote: list[tuple[float, float, float]], cores: int
) -> str:
    """How much of the wall-time difference the co-located S3 server's extra CPU time can explain."""
    wall_difference = statistics.median(w for w, _, _ in remote) - statistics.median(w for w, _, _ in local)
    server_extra = statistics.median(s for _, _, s in remote) - statistics.median(s for _, _, s in local)
    return (
        f"S3 wall - local wall: {wall_difference:.2f} s; the S3 server used {server_extra:.2f} CPU s more "
        f"during S3 runs, {server_extra / cores:.2f} s of the {cores} cores training shares with it "
        f"(a remote store would not take them)"
    )


def _upload_throughput(server: SeaweedServer, bucket: str, path: Path, uploads: int) -> tuple[float, float]:
    from job.storage import S3Store

    store = S3Store(f"s3://{bucket}/throughput")
    plain = server.client()
    size_mb = path.stat().st_size / 1e6
    job_times: list[float] = []
    plain_times: list[float] = []

    def job_upload(index: int) -> None:
        store.put_file(f"job-{index}", path)

    def plain_upload(index: int) -> None:
        plain.upload_file(str(path), bucket, f"throughput/plain-{index}")

    for index in range(uploads):  # alternating which goes first, so neither profits from the order
        pair = [(job_upload, job_times), (plain_upload, plain_times)]
        for upload, times in pair if index % 2 == 0 else reversed(pair):
            started = time.perf_counter()
            upload(index)
            times.append(time.perf_counter() - started)
    return size_mb / statistics.median(job_times), size_mb / statistics.median(plain_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="fine-tunes per output kind")
    parser.add_argument("--uploads", type=int, default=7, help="uploads per client")
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args()
    prepare_process(DeviceTarget.CPU)
    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as scratch:
        work = Path(scratch)
        train, evaluation, hub_root = prepare_workload(work, [5, 6, 7, 8, 9])
        server = SeaweedServer(work / "seaweedfs")
        server.start()
        os.environ.update(server.environment)  # for the in-process upload measurement
        try:
            bucket = server.new_bucket()
            base = {
                **{k: v for k, v in os.environ.items() if not k.startswith("FT_")},
                **server.environment,
                **FINE_TUNE,
                "FT_HUB_MIRROR": str(hub_root),
                "FT_HUB_CACHE": str(work / "hub-cache"),
                "FT_TRAIN_DATA": str(train),
                "FT_EVAL_DATA": str(evaluation),
            }
            local, remote = [], []
            phases: dict[str, list[dict[str, float]]] = {"local": [], "S3": []}

            def measured(output: str, kind: str) -> tuple[float, float, float]:
                assert server.process is not None  # started above
                server_before = _cpu_seconds(server.process.pid)
                run = run_job({**base, "FT_OUTPUT": output})
                phases[kind].append(_phases(run))
                return run.wall_seconds, run.cpu_seconds, _cpu_seconds(server.process.pid) - server_before

            for run in range(arguments.runs):  # interleaved, so drift hits both alike
                local.append(measured(str(work / f"local-{run}"), "local"))
                remote.append(measured(f"s3://{bucket}/run-{run}", "S3"))
            checkpoint = next((work / "local-0" / "checkpoints" / "attempts").rglob("train_state.ckpt"))
            checkpoint_mb = checkpoint.stat().st_size / 1e6
            job_rate, plain_rate = _upload_throughput(server, bucket, checkpoint, arguments.uploads)
        finally:
            server.stop()
    print(f"machine: {describe(host)}")
    print(
        f"{arguments.runs} fine-tunes per kind (3 epochs, digits 5-9, 32x32, "
        f"45 MB checkpoint per epoch); {arguments.uploads} uploads of a {checkpoint_mb:.1f} MB checkpoint"
    )
    print(_line("local output", local))
    print(_line("S3 output", remote))
    phase_medians = {
        kind: {phase: round(statistics.median(run[phase] for run in runs), 2) for phase in PHASES}
        for kind, runs in phases.items()
    }
    print(
        "wall medians by phase: "
        + "; ".join(
            f"{phase} local {phase_medians['local'][phase]:.2f} s, S3 {phase_medians['S3'][phase]:.2f} s"
            for phase in PHASES
        )
    )
    series = {
        "S3 wall s": [w for w, _, _ in remote],
        "local wall s": [w for w, _, _ in local],
        "S3 job CPU s": [c for _, c, _ in remote],
        "local job CPU s": [c for _, c, _ in local],
        "job upload MB/s": [job_rate],
        "boto3 upload_file MB/s": [plain_rate],
    }
    medians = {name: statistics.median(values) for name, values in series.items()}
    ratios = [
        Ratio("S3 wall s", "local wall s", 1.05, at_most=True),
        Ratio("S3 job CPU s", "local job CPU s"),
        Ratio("job upload MB/s", "boto3 upload_file MB/s", 1.0),
    ]
    print(f"checkpoint upload: job {job_rate:.0f} MB/s, plain boto3 upload_file {plain_rate:.0f} MB/s")
    for ratio in ratios:
        print(ratio.line(medians))
    note = _shared_cores_note(local, remote, host["cores"])
    print(note)
    write_json(
        arguments.json,
        "storage",
        host,
        {"epochs": 3, "image_size": 32, "checkpoint_mb": checkpoint_mb},
        "",
        series,
        ratios,
        {"note": note, "phases": phase_medians},
    )


if __name__ == "__main__":
    main()
