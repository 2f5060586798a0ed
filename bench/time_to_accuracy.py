"""Time to accuracy against PyTorch: the job (`python -m job`, the whole process) and a plain PyTorch + torchvision
script (bench/torch_finetune.py, run by .venv-torch's interpreter) doing the demo's fine-tune: GoogleNet pretrained
on digits 0-4, a new 5-class head, trained on digits 5-9 at 32x32 with the demo's settings (examples/
demo-local.yaml's `settings:` and the job's defaults), evaluated and checkpointed after every epoch.

    .venv/bin/python bench/time_to_accuracy.py [--runs 5] [--target 0.90] [--device CPU|GPU|Ascend] [--json PATH]
                                               [--work DIR]

It needs the PyTorch environment: `make bench-torch-venv`.

Prepared once under --work (default <temp>/bench-time-to-accuracy, reused by later invocations), not timed: the
digits' ImageFolder trees (job.demo.digits_data), the MindSpore hub entry (job.demo.publish_pretrained: GoogleNet
pretrained on 0-4, published as a local hub) and the PyTorch backbone (torch_finetune.py --pretrain: torchvision's
GoogleNet, initialised as the job's, with the demo's pretraining recipe, its best epoch kept, as the demo publishes
its best checkpoint).
Then --runs rounds of three, interleaved, alternating the order:

job cold:  python -m job, FT_* from the demo's settings, a fresh FT_OUTPUT and an empty FT_COMPILE_CACHE_DIR
           (every graph compiled); the hub and data caches (FT_HUB_CACHE, FT_DATA_CACHE) as a rerun finds them.
job warm:  the same with the FT_COMPILE_CACHE_DIR an earlier run of these settings filled; its `start` line must
           say compile_cache "warm" (a run that finds it cold, on first use or after the job's code changed, has
           filled it: it is not counted and runs again).
pytorch:   torch_finetune.py with the same recipe, taken from the job's settings (epochs, batch, image size,
           warmup-cosine schedule, momentum, weight decay, label smoothing, crop scale, flip, seed).

For each, from its launch (time.time() just before it, against the `time` of its JSON lines): seconds to the
first epoch whose evaluation top-1 reaches --target, total wall seconds, final top-1; and where the time goes:
start-up (launch to the `start` line), the first epoch (graph compilation included), a later epoch (training,
then evaluation and checkpoint), and what follows the last epoch (the job: plots, MINDIR export, the last
commits, metrics.json).

Targets: job cold / pytorch and job warm / pytorch at most 1.0 for time to target and for total wall (medians);
each job kind's median final top-1 no lower than PyTorch's. A run that never reaches the target is left out of its
kind's time-to-target median (the table shows how many did); a kind with none has no time-to-target ratio. The
JSON results (--json) keep every run's curve: seconds from launch, training seconds and top-1 of each epoch.

--device GPU or Ascend sets FT_DEVICE_TARGET and runs the PyTorch script on cuda when it has one (on the CPU
otherwise). On the CPU, MindSpore's oneDNN is capped at AVX2 (as the job runs it); PyTorch uses the ISA it picks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

from workload import JobRun, Ratio, describe, machine, run_job, write_json  # noqa: E402

from contract.settings import AmpLevel, DeviceTarget, Settings, env_name  # noqa: E402
from job.config import load_settings  # noqa: E402
from job.demo import DEMO_SPEC, HUB_ID, PRETRAIN, digits_data  # noqa: E402
from launcher.render import setting_text  # noqa: E402

TORCH_PYTHON = ROOT / ".venv-torch" / "bin" / "python"
TORCH_SCRIPT = BENCH / "torch_finetune.py"
KINDS = ("job cold", "job warm", "pytorch")
PUBLISH_FLAG = "--publish-pretrained"  # this script as the entry of the pretraining process (see publish_hub)
WARM_ATTEMPTS = 3
# this process's environment as started (no FT_*): the base of every child's
BASE_ENVIRONMENT = {key: value for key, value in os.environ.items() if not key.startswith("FT_")}
# the job's settings torch_finetune.py takes, by its option names
RECIPE = (
    "epochs",
    "batch_size",
    "image_size",
    "lr_init",
    "lr_max",
    "lr_end",
    "warmup_epochs",
    "momentum",
    "weight_decay",
    "label_smoothing",
    "crop_min_scale",
    "seed",
)
PHASES = ("start-up", "epoch 1", "later epoch", "training", "eval + save", "after last epoch")


@dataclass(frozen=True)
class Workload:
    """What every run uses: the fine-tuning folders, the local hub, the PyTorch backbone, the job's settings."""

    work: Path
    train: Path
    evaluation: Path
    hub: Path
    backbone: Path
    environment: dict[str, str]  # the job's, without FT_OUTPUT and FT_COMPILE_CACHE_DIR
    settings: Settings
    torch_device: str


@dataclass(frozen=True)
class Sample:
    """One run: seconds from launch to the first epoch at the target (None: never reached) and in all, the
    epoch that reached it, the final top-1, the phases' seconds and per epoch [seconds from launch to its line,
    its training seconds, its top-1]."""

    to_target: float | None
    reached_epoch: int | None
    total: float
    top1: float
    phases: dict[str, float]
    curve: list[list[float]]


def demo_environment(device: str) -> dict[str, str]:
    """examples/demo-local.yaml's settings as FT_* variables (its hub mirror left out), on `device`."""
    settings = yaml.safe_load(DEMO_SPEC.read_text(encoding="utf-8"))["settings"]
    settings.pop("hub_mirror", None)
    settings["device_target"] = device
    return {env_name(key): setting_text(value) for key, value in settings.items()}


def recipe_arguments(settings: Settings) -> list[str]:
    """torch_finetune.py's options for the job's settings; refuses settings the script does not reproduce."""
    unlike = {
        "amp_level": settings.amp_level is not AmpLevel.O0,
        "freeze_backbone": settings.freeze_backbone,
        "augment": not settings.augment,
        "world_size": settings.world_size != 1,
        "eval_every": settings.eval_every != 1,
    }
    if any(unlike.values()):
        raise SystemExit(f"torch_finetune.py does not reproduce these settings: {[k for k, v in unlike.items() if v]}")
    options = [f"--{name.replace('_', '-')}={getattr(settings, name)}" for name in RECIPE]
    return options + (["--hflip"] if settings.hflip else [])


def locations(**paths: Path | str) -> dict[str, str]:
    return {env_name(key): str(value) for key, value in paths.items()}


def publish_hub(work: Path, hub: Path) -> None:
    """The demo's MindSpore hub entry, pretrained in a child process (log: work/pretrain-mindspore.log)."""
    if (hub / "mshub_res" / "assets" / f"{HUB_ID}.md").exists():
        return
    print("pretraining the MindSpore backbone on digits 0-4 (once, not measured)", flush=True)
    with open(work / "pretrain-mindspore.log", "w", encoding="utf-8") as log:
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), PUBLISH_FLAG, str(work), str(hub)],
            env=BASE_ENVIRONMENT,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )


def pretrain_torch(work: Path, backbone: Path) -> None:
    """The PyTorch backbone with the demo's pretraining recipe, on the CPU as the demo pretrains its own (log:
    work/pretrain-torch.log); its summary next to it."""
    if backbone.exists():
        return
    print("pretraining the PyTorch backbone on digits 0-4 (once, not measured)", flush=True)
    train, evaluation = digits_data(work, [0, 1, 2, 3, 4])
    settings = load_settings({**PRETRAIN, **locations(model="-", train_data=train, eval_data=evaluation, output="-")})
    command = [str(TORCH_PYTHON), str(TORCH_SCRIPT), "--pretrain", *recipe_arguments(settings)]
    command += [f"--train={train}", f"--eval={evaluation}", f"--backbone={backbone}"]
    with open(work / "pretrain-torch.log", "w", encoding="utf-8") as log:
        finished = subprocess.run(command, env=BASE_ENVIRONMENT, stdout=subprocess.PIPE, stderr=log, text=True)
        log.write(finished.stdout)
    if finished.returncode:
        raise SystemExit(f"PyTorch pretraining failed (exit {finished.returncode}); see {work / 'pretrain-torch.log'}")
    backbone.with_suffix(".json").write_text(finished.stdout.strip().splitlines()[-1] + "\n", encoding="utf-8")


def prepare(work: Path, device: str) -> Workload:
    """The data, both pretrained backbones and the job's settings, made once under `work`."""
    work.mkdir(parents=True, exist_ok=True)
    train, evaluation = digits_data(work, [5, 6, 7, 8, 9])
    hub, torch_device = work / "hub", "cpu" if device == DeviceTarget.CPU.value else "cuda"
    publish_hub(work, hub)
    backbone = work / "torch" / "googlenet_digits04_job_init.pt"  # torch_finetune.py's job_initialised
    pretrain_torch(work, backbone)
    environment = {
        **demo_environment(device),
        **locations(
            model=HUB_ID,
            hub_mirror=hub,
            hub_cache=work / "hub-cache",
            data_cache=work / "data-cache",
            train_data=train,
            eval_data=evaluation,
        ),
    }
    settings = load_settings({**environment, **locations(output=work / "unused")})
    return Workload(work, train, evaluation, hub, backbone, environment, settings, torch_device)


def top1(event: dict) -> float:
    """An epoch line's evaluation top-1: the job's under `eval`, the PyTorch script's at the top level."""
    return event["eval"]["top1"] if "eval" in event else event["top1"]


def sample(run: JobRun, target: float) -> Sample:
    """Time to target, total, final top-1 and phases from one run's lines."""
    start = next(event["time"] for event in run.events if event["event"] == "start")
    epochs = [event for event in run.events if event["event"] == "epoch"]
    reached = next((event for event in epochs if top1(event) >= target), None)
    times = [start] + [event["time"] for event in epochs]
    gaps = [later - earlier for earlier, later in zip(times[1:], times[2:])]  # epochs 2 on: line to line
    training = statistics.median(event["seconds"] for event in epochs[1:])
    later = statistics.median(gaps)
    phases = {
        "start-up": start - run.launched_at,
        "epoch 1": times[1] - start,
        "later epoch": later,
        "training": training,
        "eval + save": later - training,
        "after last epoch": run.launched_at + run.wall_seconds - times[-1],
    }
    return Sample(
        to_target=None if reached is None else round(reached["time"] - run.launched_at, 3),
        reached_epoch=None if reached is None else reached["epoch"],
        total=round(run.wall_seconds, 3),
        top1=top1(epochs[-1]),
        phases={name: round(value, 3) for name, value in phases.items()},
        curve=[[round(event["time"] - run.launched_at, 3), event["seconds"], top1(event)] for event in epochs],
    )


def launch(kind: str, environment: dict[str, str], command: list[str] | None = None) -> JobRun:
    try:
        return run_job(environment, command)
    except subprocess.CalledProcessError as exc:
        last = (exc.output or "").strip().splitlines()[-1:] or ["(nothing)"]
        raise SystemExit(f"{kind}: exit code {exc.returncode}; its last line: {last[0]}") from exc


def job_run(workload: Workload, output: Path, compile_cache: Path) -> tuple[JobRun, str]:
    """The job once; its run and the compile-cache state its `start` line reports."""
    environment = {
        **BASE_ENVIRONMENT,
        **workload.environment,
        **locations(output=output, compile_cache_dir=compile_cache),
    }
    run = launch("python -m job", environment)
    shutil.rmtree(output, ignore_errors=True)
    state = next(event["compile_cache"] for event in run.events if event["event"] == "start")
    return run, state


def job_cold(workload: Workload, index: int, target: float) -> Sample:
    runs = workload.work / "runs"
    cache = runs / f"cold-{index}-compile-cache"
    shutil.rmtree(cache, ignore_errors=True)
    run, state = job_run(workload, runs / f"cold-{index}", cache)
    shutil.rmtree(cache, ignore_errors=True)
    if state != "cold":
        raise SystemExit(f"job cold: compile_cache {state!r} with an empty FT_COMPILE_CACHE_DIR")
    return sample(run, target)


def job_warm(workload: Workload, index: int, target: float) -> Sample:
    for _ in range(WARM_ATTEMPTS):
        run, state = job_run(workload, workload.work / "runs" / f"warm-{index}", workload.work / "compile-cache")
        if state == "warm":
            return sample(run, target)
        print(
            f"  (job warm found the compile cache {state}: first use, or the job's code changed since it was "
            f"filled; that run filled it, is not counted and runs again)",
            flush=True,
        )
    raise SystemExit(f"job warm: the compile cache was not warm in {WARM_ATTEMPTS} attempts")


def pytorch(workload: Workload, index: int, target: float) -> Sample:
    output = workload.work / "runs" / f"pytorch-{index}"
    command = [str(TORCH_PYTHON), str(TORCH_SCRIPT), f"--device={workload.torch_device}"]
    command += recipe_arguments(workload.settings)
    command += [f"--train={workload.train}", f"--eval={workload.evaluation}", f"--backbone={workload.backbone}"]
    run = launch("torch_finetune.py", BASE_ENVIRONMENT, command + [f"--output={output}"])
    shutil.rmtree(output, ignore_errors=True)
    return sample(run, target)


MEASURES = {"job cold": job_cold, "job warm": job_warm, "pytorch": pytorch}


def seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def run_line(number: int, samples: dict[str, Sample]) -> str:
    parts = [
        f"{kind} {seconds(found.to_target)} to target"
        + (f" (epoch {found.reached_epoch})" if found.reached_epoch else "")
        + f", {found.total:.1f} s total, top-1 {found.top1:.4f}"
        for kind, found in samples.items()
    ]
    return f"run {number}: " + "; ".join(parts)


def measure(workload: Workload, runs: int, target: float) -> dict[str, list[Sample]]:
    """`runs` samples of each kind, interleaved, alternating the order."""
    found: dict[str, list[Sample]] = {kind: [] for kind in KINDS}
    for index in range(runs):
        for kind in KINDS if index % 2 == 0 else tuple(reversed(KINDS)):
            found[kind].append(MEASURES[kind](workload, index, target))
        print(run_line(index + 1, {kind: found[kind][-1] for kind in KINDS}), flush=True)
    return found


def series(found: dict[str, list[Sample]]) -> dict[str, list[float]]:
    """Seconds to target (the runs that reached it) and total seconds, per kind."""
    result: dict[str, list[float]] = {}
    for kind, samples in found.items():
        reached = [item.to_target for item in samples if item.to_target is not None]
        if reached:
            result[f"{kind} to target"] = reached
        result[f"{kind} total"] = [item.total for item in samples]
    return result


def ratios(values: dict[str, list[float]]) -> list[Ratio]:
    pairs = [(f"{kind} {what}", f"pytorch {what}") for what in ("to target", "total") for kind in KINDS[:2]]
    return [Ratio(top, bottom, 1.0, at_most=True) for top, bottom in pairs if top in values and bottom in values]


def median_table(found: dict[str, list[Sample]], target: float) -> list[str]:
    """One row per kind: medians of time to target, total, final top-1 and the phases."""
    headings = [f"to {target:g}", "total", "top-1", *PHASES]
    rows = [["", *headings]]
    for kind, samples in found.items():
        reached = [item.to_target for item in samples if item.to_target is not None]
        row = [kind, f"{statistics.median(reached):.1f}" if reached else "-"]
        row += [f"{statistics.median(item.total for item in samples):.1f}"]
        row += [f"{statistics.median(item.top1 for item in samples):.4f}"]
        row += [f"{statistics.median(item.phases[name] for item in samples):.1f}" for name in PHASES]
        if len(reached) < len(samples):
            row[1] += f" ({len(reached)}/{len(samples)})"
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if column else cell.ljust(width) for column, (cell, width) in enumerate(zip(row, widths))
        )
        for row in rows
    ]


def top1_outcome(found: dict[str, list[Sample]]) -> dict:
    """Median final top-1 per kind; passed when each job kind's is no lower than PyTorch's."""
    medians = {kind: statistics.median(item.top1 for item in samples) for kind, samples in found.items()}
    return {"medians": medians, "passed": all(medians[kind] >= medians["pytorch"] for kind in KINDS[:2])}


def header(host: dict, settings: dict) -> None:
    """As bench/training.py's print_header (which would import MindSpore into this process)."""
    print("time to accuracy: the job (python -m job) vs plain PyTorch, the demo's GoogleNet fine-tune")
    print(f"machine: {describe(host)}")
    print("settings: " + ", ".join(f"{key} {value}" for key, value in settings.items()), flush=True)


def torch_about() -> dict:
    answer = subprocess.run(
        [str(TORCH_PYTHON), str(TORCH_SCRIPT), "--about"], env=BASE_ENVIRONMENT, capture_output=True, text=True
    )
    return json.loads(answer.stdout)


def backbones(workload: Workload) -> str:
    """The pretrained backbones' evaluation on digits 0-4, as their pretraining reported it."""
    descriptor = (workload.hub / "mshub_res" / "assets" / f"{HUB_ID}.md").read_text(encoding="utf-8")
    mindspore = next((line.split(":", 1)[1].strip() for line in descriptor.splitlines() if "evaluation" in line), "?")
    torch_summary = json.loads(workload.backbone.with_suffix(".json").read_text())["summary"]
    return f"MindSpore {mindspore}, PyTorch best top1 {torch_summary['best_top1']:.4f} (digits 0-4)"


def described_settings(options: argparse.Namespace, workload: Workload, about: dict) -> dict:
    settings = workload.settings
    return {
        "target_top1": options.target,
        "runs": options.runs,
        "device": options.device,
        "recipe": f"{settings.epochs} epochs, batch {settings.batch_size}, {settings.image_size}x{settings.image_size}"
        f", lr {settings.lr_init:g}->{settings.lr_max:g}->{settings.lr_end:g} warmup {settings.warmup_epochs:g}"
        f" epoch, momentum {settings.momentum}, weight decay {settings.weight_decay:g}, crop scale "
        f"{settings.crop_min_scale}-1, hflip {settings.hflip}, seed {settings.seed}",
        "images": f"{sum(1 for _ in workload.train.rglob('*.png'))} train, "
        f"{sum(1 for _ in workload.evaluation.rglob('*.png'))} eval",
        "backbones": backbones(workload),
        "pytorch": f"torch {about['torch']}, torchvision {about['torchvision']}, device {workload.torch_device}"
        f"{'' if about['cuda'] or workload.torch_device == 'cpu' else ' (absent: CPU)'}, CPU capability "
        f"{about['cpu_capability']}",
        "mindspore_onednn_isa": BASE_ENVIRONMENT.get("ONEDNN_MAX_CPU_ISA", "AVX2 (the job's cap)"),
        "work": str(workload.work),
    }


def report(found: dict[str, list[Sample]], options: argparse.Namespace, host: dict, settings: dict) -> None:
    values = series(found)
    medians = {key: statistics.median(items) for key, items in values.items()}
    print()
    print(f"seconds from launch, medians of {options.runs} runs (phases: see the module docstring)")
    for line in median_table(found, options.target):
        print(line)
    chosen = ratios(values)
    for ratio in chosen:
        print(ratio.line(medians))
    missing = [kind for kind in KINDS if f"{kind} to target" not in values]
    if missing:
        print(f"never reached top-1 {options.target:g}: {', '.join(missing)}")
    outcome = top1_outcome(found)
    print(
        "final top-1: "
        + ", ".join(f"{kind} {value:.4f}" for kind, value in outcome["medians"].items())
        + f"  (target: the job's no lower than PyTorch's) {'PASS' if outcome['passed'] else 'MISS'}"
    )
    extra = {
        "top1": outcome,
        "samples": {kind: [asdict(item) for item in samples] for kind, samples in found.items()},
        "note": f"PyTorch: {settings['pytorch']}; MindSpore oneDNN {settings['mindspore_onednn_isa']}",
    }
    write_json(options.json, "time_to_accuracy", host, settings, "s", values, chosen, extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (medians are reported)")
    parser.add_argument("--target", type=float, default=0.90, help="evaluation top-1 to reach")
    parser.add_argument("--device", default="CPU", choices=[target.value for target in DeviceTarget])
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as a JSON object here")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bench-time-to-accuracy",
        help="data, backbones and caches, kept for later invocations",
    )
    options = parser.parse_args()
    if not TORCH_PYTHON.exists():
        parser.error(f"{TORCH_PYTHON} does not exist: create the PyTorch environment with make bench-torch-venv")
    host = machine()
    work = options.work.resolve()
    workload = prepare(work, options.device)
    os.chdir(work)  # MindSpore writes rank_0/ and kernel_meta/ relative to the working directory
    settings = described_settings(options, workload, torch_about())
    header(host, settings)
    found = measure(workload, options.runs, options.target)
    report(found, options, host, settings)


if __name__ == "__main__":
    if sys.argv[1:2] == [PUBLISH_FLAG]:  # the pretraining child: MindSpore's compile cache needs a script entry
        from job.demo import publish_pretrained

        publish_pretrained(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
