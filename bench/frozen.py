"""Frozen-backbone benchmark: the job (`python -m job`) fine-tuning the whole network, and training the head of a
frozen backbone on features cached once (FT_FREEZE_BACKBONE=true, FT_AUGMENT=false), on the demo's digits 5-9
from the demo's hub entry (GoogleNet pretrained on digits 0-4, as `make demo` publishes it; reused when present).

    .venv/bin/python bench/frozen.py [--runs 5] [--epochs 4] [--demo-dir .demo] [--json PATH]

Per-epoch time: each run's median of the job's recorded epoch seconds after the first epoch; medians over runs.
Targets: full fine-tuning / cached frozen epoch time >= 10, and the cached frozen run's final top-1 within 1 point
of the same frozen run on images every epoch (the job with caching turned off), which must see the same batches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from workload import Ratio, describe, machine, run_job, write_json  # noqa: E402

from contract.settings import DeviceTarget  # noqa: E402
from job.demo import COMMON, HUB_ID, digits_data, publish_pretrained  # noqa: E402
from job.device import prepare_process  # noqa: E402

KINDS = {
    "full": {"FT_FREEZE_BACKBONE": "false"},
    "cached": {"FT_FREEZE_BACKBONE": "true"},
    "images": {"FT_FREEZE_BACKBONE": "true"},
}  # images: frozen, with caching turned off
SPEED = Ratio("full", "cached", 10.0)  # epoch seconds: cached at least 10x faster
TOP1_TOLERANCE = 0.01
UNCACHED_FLAG = "--job-without-feature-cache"


def _job_without_feature_cache() -> int:
    """`python -m job` with job.features turned off: the frozen backbone runs on the images every epoch."""
    prepare_process(DeviceTarget.CPU)
    from job import features
    from job.__main__ import main

    features.applies = lambda *_: False
    return main([])


def _job(environment: dict[str, str], kind: str) -> dict:
    """One run: per-epoch seconds, final top-1, feature-caching seconds (if any) and wall seconds."""
    command = [sys.executable, __file__, UNCACHED_FLAG] if kind == "images" else None
    run = run_job({**environment, **KINDS[kind]}, command)
    epochs = [event["seconds"] for event in run.epoch_events()]
    cached = [event["seconds"] for event in run.events if event.get("event") == "features_cached"]
    if (kind == "cached") != bool(cached):
        raise RuntimeError(f"{kind} run: features_cached events {cached}; the benchmark measures the wrong path")
    return {
        "epoch_seconds": statistics.median(epochs),
        "top1": run.summary["top1"],
        "features_cached_seconds": cached[0] if cached else None,
        "wall_seconds": round(run.wall_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (medians are reported)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (the first is not timed)")
    parser.add_argument(
        "--demo-dir",
        type=Path,
        default=ROOT / ".demo",
        help="the demo's directory: its data and pretrained hub entry, made when missing",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as a JSON object here")
    arguments = parser.parse_args()
    host = machine()
    demo = arguments.demo_dir.resolve()
    pretrained = (demo / "hub" / "mshub_res" / "assets" / f"{HUB_ID}.md").exists()
    publish_pretrained(demo, demo / "hub")
    train, evaluation = digits_data(demo, [5, 6, 7, 8, 9])
    samples: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="bench-frozen-") as scratch:
        work = Path(scratch)
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FT_")},
            **COMMON,
            "FT_MODEL": HUB_ID,
            "FT_HUB_MIRROR": str(demo / "hub"),
            "FT_HUB_CACHE": str(work / "hub-cache"),
            "FT_TRAIN_DATA": str(train),
            "FT_EVAL_DATA": str(evaluation),
            "FT_EPOCHS": str(arguments.epochs),
            "FT_LR_MAX": "0.02",
            "FT_AUGMENT": "false",
            "FT_EXPORT_MINDIR": "false",
            "FT_LOG_EVERY": "1000",
            "FT_SCRATCH_DIR": str(work),
        }
        for run in range(arguments.runs):  # interleaved, alternating the order, so drift hits all kinds alike
            for kind in list(KINDS) if run % 2 == 0 else reversed(KINDS):
                samples[kind].append(_job({**base, "FT_OUTPUT": str(work / f"{kind}-{run}")}, kind))
            print(
                f"run {run + 1}: "
                + ", ".join(f"{kind} {samples[kind][-1]['epoch_seconds']:.3f} s/epoch" for kind in KINDS),
                flush=True,
            )
    series = {kind: [sample["epoch_seconds"] for sample in values] for kind, values in samples.items()}
    medians = {kind: statistics.median(values) for kind, values in series.items()}
    top1 = {kind: statistics.median(sample["top1"] for sample in samples[kind]) for kind in ("cached", "images")}
    difference = abs(top1["cached"] - top1["images"])
    caching = statistics.median(sample["features_cached_seconds"] for sample in samples["cached"])
    backbone = f"{HUB_ID} from {demo / 'hub'} ({'reused' if pretrained else 'pretrained now'}, digits 0-4)"
    print(f"machine: {describe(host)}")
    print(
        f"job: digits 5-9 at 32x32, batch 32, {arguments.epochs} epochs, no augmentation, {arguments.runs} runs "
        f"per kind; backbone {backbone}"
    )
    for kind, values in series.items():
        walls = statistics.median(sample["wall_seconds"] for sample in samples[kind])
        print(
            f"{kind:<7} epoch median {medians[kind]:7.3f} s, run wall median {walls:6.1f} s  "
            f"(epochs: {', '.join(f'{value:.3f}' for value in values)})"
        )
    print(f"features cached once per run: median {caching:.2f} s")
    print(SPEED.line(medians))
    print(
        f"top-1 cached {top1['cached']:.4f} vs images {top1['images']:.4f} (both frozen): difference "
        f"{difference * 100:.2f} points  (target <= {TOP1_TOLERANCE * 100:g}) "
        f"{'PASS' if difference <= TOP1_TOLERANCE else 'MISS'}"
    )
    write_json(
        arguments.json,
        "frozen",
        host,
        {"epochs": arguments.epochs, "image_size": 32, "batch_size": 32, "augment": False, "backbone": backbone},
        "s/epoch",
        series,
        [SPEED],
        {
            "top1": {
                "medians": top1,
                "difference": round(difference, 4),
                "target": TOP1_TOLERANCE,
                "passed": difference <= TOP1_TOLERANCE,
            },
            "features_cached_seconds": [sample["features_cached_seconds"] for sample in samples["cached"]],
            "samples": samples,
        },
    )


if __name__ == "__main__":
    if sys.argv[1:] == [UNCACHED_FLAG]:
        sys.exit(_job_without_feature_cache())
    main()
