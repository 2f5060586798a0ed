"""Build the job's image with podman or docker: `python3 -m image.build [--device cpu|gpu|ascend]...`.

`make image` builds the CPU image; `make image-test` builds the CPU and GPU images, with a local stand-in for
the public base image when that cannot be pulled (`--standin auto`), and tests them. Each build's full output
goes to build/image/<device>.log; a failure ends with one line naming the failed step and what to fix.
Exit codes: 0 built, 1 a build step failed, 2 bad usage or a missing tool.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from launcher.engine import Engine, EngineMissing, find_engine

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_BASE = "python:3.11.7-slim-bookworm"
STANDIN_ROOTFS = "localhost/finetune-bookworm-minbase:latest"
STANDIN_BASE = "localhost/finetune-python-standin:3.11-bookworm"
DEVICES = ("cpu", "gpu", "ascend")


class BuildFailed(Exception):
    """A build step failed; the message is the one line to print."""

    exit_code = 1


class UsageError(BuildFailed):
    exit_code = 2


@dataclass(frozen=True)
class Built:
    tag: str
    seconds: float
    size_bytes: int


# Causes recognised in an engine's output, most specific first: (pattern, what to fix).
CAUSES = [
    (
        r"CERTIFICATE_VERIFY_FAILED",
        "pip does not trust the TLS certificate it is shown (a TLS-intercepting proxy?): "
        "pass --pip-ca /path/to/ca-bundle.crt or set PIP_CERT",
    ),
    (
        r"No matching distribution found for (\S+)",
        "pip found no {0} on the package index: check --mindspore-package/--mindspore-version and the index",
    ),
    (
        r"(setting rlimit|setrlimit).*(not permitted|denied)",
        "the engine's default ulimits exceed this machine's hard limits: set default_ulimits in containers.conf "
        "(image/configure-engine.sh writes it)",
    ),
    (
        r"(Temporary failure in name resolution|Could not resolve|Network is unreachable|no such host)",
        "the build cannot reach the network: check the machine's access to the package index and Debian's "
        "mirrors (--network host is used for builds)",
    ),
    (
        r"E: (Unable to locate package|Failed to fetch|The repository)",
        "apt-get failed in the build: check access to the base's package mirrors",
    ),
    (r"no space left on device", "the disk is full: free space for the engine's storage (podman system prune)"),
]


def diagnose(output: str) -> str:
    """What to fix, from the build output's known causes; empty when none is recognised."""
    for pattern, advice in CAUSES:
        found = re.search(pattern, output, re.IGNORECASE)
        if found:
            return advice.format(*found.groups())
    return ""


def failed_step(output: str) -> str:
    """The last build step the output started (podman `STEP n/m: ...`, BuildKit `#n [stage k/m] ...`)."""
    steps = re.findall(r"^(?:\[\d+/\d+\] )?STEP \d+/\d+: (.+)$|^#\d+ \[[^\]]+\] (.+)$", output, re.MULTILINE)
    if not steps:
        return "the engine's start"
    step = next(part for part in steps[-1] if part)
    return step if len(step) <= 90 else step[:87] + "..."


def run_logged(command: list[str], log: Path, what: str, stdin: subprocess.Popen | None = None) -> None:
    """Run a build command with its output in `log` and its step lines on stdout; raise on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as sink:
        sink.write(f"$ {' '.join(command)}\n")
        sink.flush()
        process = subprocess.Popen(
            command,
            stdin=stdin.stdout if stdin else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        output = []
        assert process.stdout is not None  # stdout=PIPE
        for line in process.stdout:
            sink.write(line)
            output.append(line)
            if re.match(r"^(\[\d+/\d+\] )?STEP \d+/\d+: |^#\d+ \[", line):
                print(f"  {line.rstrip()[:120]}", flush=True)
        code = process.wait()
    if stdin:
        stdin.wait()
    if code != 0:
        text = "".join(output)
        cause = diagnose(text) or f"exit code {code}"
        raise BuildFailed(f"{what} failed at {failed_step(text)!r}: {cause} (full output: {log})")


def ensure_base(engine: Engine, base: str, standin: str, log: Path) -> str:
    """The base image to build on: `base` if present or pullable, else (with --standin auto) the stand-in."""
    if standin == "always":
        return build_standin(engine, log)
    if engine.image_exists(base):
        return base
    print(f"pulling {base} ...", flush=True)
    pulled = engine.run("pull", base, timeout=1800)
    if pulled.returncode == 0:
        return base
    reason = (pulled.stderr.strip() or pulled.stdout.strip()).splitlines()[-1:] or ["no output"]
    if standin == "never":
        raise BuildFailed(
            f"cannot pull the base image {base} ({reason[0]}): pass --base-image NAME, or "
            f"--standin auto to build a local stand-in for it"
        )
    print(f"cannot pull {base}; building the local stand-in {STANDIN_BASE}", flush=True)
    return build_standin(engine, log)


def build_standin(engine: Engine, log: Path, mirror: str = "http://deb.debian.org/debian") -> str:
    """Debian bookworm (debootstrap, minbase) imported into the engine, then Python 3.11 on it."""
    if engine.image_exists(STANDIN_BASE):
        return STANDIN_BASE
    if not engine.image_exists(STANDIN_ROOTFS):
        debootstrap = shutil.which("debootstrap")
        if debootstrap is None:
            raise UsageError("building the stand-in base needs debootstrap: install it (apt-get install debootstrap)")
        if os.geteuid() != 0:
            raise UsageError(
                "building the stand-in base needs root (debootstrap); run as root or pass "
                "--base-image with an image of Python 3.11 on Debian bookworm"
            )
        with tempfile.TemporaryDirectory(prefix="finetune-rootfs-") as rootfs:
            run_logged(
                [debootstrap, "--variant=minbase", "bookworm", rootfs, mirror], log, "the stand-in's debootstrap"
            )
            tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
            run_logged([engine.command, "import", "-", STANDIN_ROOTFS], log, "importing the stand-in's root", stdin=tar)
    run_logged(
        [
            engine.command,
            "build",
            "--network",
            "host",
            "--build-arg",
            f"STANDIN_ROOTFS={STANDIN_ROOTFS}",
            "-f",
            str(ROOT / "image" / "standin.Containerfile"),
            "-t",
            STANDIN_BASE,
            str(ROOT / "image"),
        ],
        log,
        "the stand-in base build",
    )
    return STANDIN_BASE


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def git_revision() -> str:
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def device_tag(image: str, device: str) -> str:
    """`name:tag` for the CPU image, `name:tag-<device>` for the others."""
    if device == "cpu":
        return image
    name, tag = image.rsplit(":", 1) if ":" in image.rsplit("/", 1)[-1] else (image, "latest")
    return f"{name}:{tag}-{device}"


def build_image(engine: Engine, device: str, tag: str, base: str, arguments: argparse.Namespace) -> Built:
    command = [
        engine.command,
        "build",
        "--network",
        "host",
        "--build-arg",
        f"DEVICE={device}",
        "-t",
        tag,
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--build-arg",
        f"VERSION={project_version()}",
        "--build-arg",
        f"REVISION={git_revision()}",
    ]
    if arguments.mindspore_package:
        command += ["--build-arg", f"MINDSPORE_PACKAGE={arguments.mindspore_package}"]
    if arguments.mindspore_version:
        command += ["--build-arg", f"MINDSPORE_VERSION={arguments.mindspore_version}"]
    if arguments.pip_ca:
        command += ["--secret", f"id=pip-ca,src={arguments.pip_ca}"]
    log = arguments.log_dir / f"{device}.log"
    log.unlink(missing_ok=True)
    started = time.monotonic()
    run_logged([*command, "-f", str(ROOT / "Dockerfile"), str(ROOT)], log, f"the {device} image build")
    return Built(tag, time.monotonic() - started, engine.image_size(tag))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python3 -m image.build", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--device", action="append", choices=DEVICES, help="image to build (repeatable; default cpu)")
    root.add_argument(
        "--image",
        default="mindspore-finetune:dev",
        help="name:tag of the CPU image; other devices get a -<device> tag suffix",
    )
    root.add_argument(
        "--base-image",
        default=None,
        help=f"base image (default {PUBLIC_BASE}; for ascend: a CANN image with Python 3.11 as `python`)",
    )
    root.add_argument(
        "--standin",
        choices=["never", "auto", "always"],
        default="never",
        help="build the local stand-in base (debootstrap) when the base cannot be pulled (auto) or always",
    )
    root.add_argument(
        "--mindspore-package", default=None, help="MindSpore distribution (Dockerfile default: mindspore)"
    )
    root.add_argument("--mindspore-version", default=None, help="MindSpore version (Dockerfile default: 2.10.0)")
    root.add_argument(
        "--pip-ca",
        default=os.environ.get("PIP_CERT") or None,
        help="extra CA bundle pip inside the build trusts (default: $PIP_CERT)",
    )
    root.add_argument(
        "--log-dir",
        type=Path,
        default=ROOT / "build" / "image",
        help="where each build's full output goes (default build/image)",
    )
    return root


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    devices = list(dict.fromkeys(arguments.device or ["cpu"]))
    try:
        if "ascend" in devices and not arguments.base_image:
            raise UsageError(
                "--device ascend needs --base-image: a CANN image (the Ascend toolkit is not on a "
                "package index) with Python 3.11 as `python`"
            )
        if arguments.pip_ca and not Path(arguments.pip_ca).is_file():
            raise UsageError(f"--pip-ca {arguments.pip_ca}: no such file")
        engine = find_engine()
        base = ensure_base(
            engine, arguments.base_image or PUBLIC_BASE, arguments.standin, arguments.log_dir / "base.log"
        )
        for device in devices:
            print(f"building {device_tag(arguments.image, device)} ({device}) on {base} with {engine.name}", flush=True)
            built = build_image(engine, device, device_tag(arguments.image, device), base, arguments)
            print(f"built {built.tag}: {built.size_bytes / 1e9:.2f} GB in {built.seconds:.0f} s", flush=True)
    except EngineMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BuildFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
