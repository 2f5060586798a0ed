"""The embedded default, end to end on the CPU with no network (`python -m job.demo`, run by `make demo`).

1. Builds a small real data set: scikit-learn's handwritten digits as 32x32 RGB PNGs, digits 0-4 and 5-9.
2. Publishes a local hub entry: GoogleNet pretrained on digits 0-4, its checkpoint, descriptor and sha256.
3. Runs the job on digits 5-9 from that hub entry with include_top=False, and evaluates, through
   `launcher run --local examples/demo-local.yaml`: exactly the environment its Kubernetes manifest gives
   the container.

The last line printed is the job's JSON summary (top1, metrics, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from contract.settings import DeviceTarget
from job.config import load_settings

HUB_ID = "local/1.0/googlenet_digits04"
IMAGE_SIZE = 32
COMMON = {
    "FT_IMAGE_SIZE": str(IMAGE_SIZE),
    "FT_BATCH_SIZE": "32",
    "FT_HFLIP": "false",
    "FT_CROP_MIN_SCALE": "0.6",
    "FT_WARMUP_EPOCHS": "1",
    "FT_LOG_EVERY": "10",
    "FT_DEVICE_TARGET": "CPU",
}
PRETRAIN = {**COMMON, "FT_EPOCHS": "6", "FT_LR_MAX": "0.05", "FT_EXPORT_MINDIR": "false"}
DEMO_SPEC = Path(__file__).resolve().parents[1] / "examples" / "demo-local.yaml"  # the fine-tuning settings


def digits_data(root: Path, digits: list[int]) -> tuple[Path, Path]:
    """The digits' train/eval folders, written once (a marker file says the set is complete)."""
    from job.digits import write_digits

    folder = root / "data" / ("digits-" + "".join(map(str, digits)))
    if not (folder / ".complete").exists():
        write_digits(folder, digits, image_size=IMAGE_SIZE)
        (folder / ".complete").touch()
    return folder / "train", folder / "eval"


def publish_pretrained(root: Path, hub_root: Path) -> None:
    """Pretrain GoogleNet from scratch on digits 0-4 and publish it as HUB_ID, unless already published."""
    if (hub_root / "mshub_res" / "assets" / f"{HUB_ID}.md").exists():
        return
    from job.device import prepare_process

    prepare_process(DeviceTarget.CPU)
    import mindspore as ms

    from job.hub import load_checkpoint_into
    from job.hub.publish import publish
    from job.models.googlenet import googlenet
    from job.progress import Progress
    from job.runner import run

    train, evaluation = digits_data(root, [0, 1, 2, 3, 4])
    output = root / "pretrain" / time.strftime("%Y%m%d-%H%M%S")
    settings = load_settings(
        {
            "FT_MODEL": "googlenet (from scratch)",
            "FT_TRAIN_DATA": str(train),
            "FT_EVAL_DATA": str(evaluation),
            "FT_OUTPUT": str(output),
            **PRETRAIN,
        }
    )
    with Progress() as progress:
        summary = run(settings, progress, backbone=googlenet(include_top=False))
    best = output / json.loads((output / "metrics.json").read_text())["artefacts"]["best_checkpoint"]
    network = googlenet(num_classes=5, include_top=True)  # the published asset holds the network alone
    load_checkpoint_into(network, best)
    ms.save_checkpoint(network, str(output / "googlenet_digits04.ckpt"))
    publish(
        hub_root,
        HUB_ID,
        "googlenet",
        output / "googlenet_digits04.ckpt",
        **{
            "backbone-name": "googlenet",
            "module-type": "cv",
            "fine-tunable": "True",
            "train-dataset": "digits 0-4",
            "evaluation": f"top1 {summary['top1']:.4f}",
        },
    )


def main() -> int:
    root = Path(os.environ.get("DEMO_DIR", ".demo")).resolve()
    hub_root = root / "hub"
    publish_pretrained(root, hub_root)
    train, evaluation = digits_data(root, [5, 6, 7, 8, 9])
    overrides = {
        "model": HUB_ID,
        "train_data": train,
        "eval_data": evaluation,
        "settings.hub_mirror": hub_root,
        "output": root / "runs" / time.strftime("%Y%m%d-%H%M%S"),
    }
    command = [sys.executable, "-m", "launcher", "run", "--local", str(DEMO_SPEC), "--workdir", str(root / "launcher")]
    for key, value in overrides.items():
        command += ["--set", f"{key}={value}"]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
