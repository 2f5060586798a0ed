"""`launcher run --local --container`: the job in its image on this machine, run as the rendered pod would run it.

The engine command is derived from the rendered Job manifest itself, not from the spec, so what runs here is
what the cluster would run: the container's command, environment, the S3 credentials Secret as read-only files
(made from this machine's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), user, read-only root filesystem,
dropped capabilities, no privilege escalation, memory limit, emptyDir volumes (fresh anonymous volumes; the
memory-backed /dev/shm as the shm size). Locations in the environment that are paths on this machine (hub
descriptor or mirror, data sets, output) are bind-mounted at the same absolute paths: inputs read-only, the
output writable.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from launcher.engine import Engine, EngineFailed
from launcher.errors import SpecError
from launcher.spec import JobSpec

# Variables naming locations the job reads (mounted read-only) or writes (the output) when they are local paths.
READ_LOCATIONS = ("FT_TRAIN_DATA", "FT_EVAL_DATA", "FT_HUB_MIRROR", "FT_HUB_NETWORK_DIR")
OUTPUT_LOCATION = "FT_OUTPUT"
ENGINE_START_FAILURE = 125  # podman and docker: the container could not be created or started
HANDLED_SECURITY = {
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "capabilities",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "seccompProfile",
}


def unescape_expansion(value: str) -> str:
    """The literal value of a manifest env value whose `$` were doubled against Kubernetes' $(VAR) expansion."""
    return value.replace("$$", "$")


def local_location(value: str) -> Path | None:
    """The absolute local path a location names, or None for s3://, http(s):// and hub ids."""
    parsed = urlparse(value)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).resolve()
    if parsed.scheme and value[len(parsed.scheme) :].startswith("://"):
        return None
    return Path(value).expanduser().resolve()


def model_location(value: str) -> Path | None:
    """A local hub descriptor (`.md` path) names a file whose folder holds its relative asset links."""
    if not value.endswith(".md"):
        return None  # a hub id, resolved against FT_HUB_MIRROR
    path = local_location(value)
    return path.parent if path else None


PERMISSION_BITS = {
    "owner": dict(r=stat.S_IRUSR, w=stat.S_IWUSR, x=stat.S_IXUSR),
    "group": dict(r=stat.S_IRGRP, w=stat.S_IWGRP, x=stat.S_IXGRP),
    "other": dict(r=stat.S_IROTH, w=stat.S_IWOTH, x=stat.S_IXOTH),
}


def _allowed(path: Path, uid: int, gid: int, permission: str) -> bool:
    """Whether the container's user would have every `permission` ("r", "w", "x") on a host path."""
    status = path.stat()
    bits = PERMISSION_BITS["owner" if status.st_uid == uid else "group" if status.st_gid == gid else "other"]
    return all(status.st_mode & bits[letter] for letter in permission)


def prepare_output(path: Path, uid: int, gid: int, maps_own_user: bool) -> None:
    """Create the output folder for the container's user, or say how to make an existing one writable."""
    if not path.exists():
        path.mkdir(parents=True)
        if not maps_own_user and os.geteuid() == 0:
            os.chown(path, uid, gid)
    if not path.is_dir():
        raise SpecError(f"output {path} is not a directory; name a directory or an s3:// prefix")
    if not maps_own_user and not _allowed(path, uid, gid, "wx"):
        raise SpecError(
            f"output {path} is not writable by the image's user {uid}: chown {uid}:{gid} {path} (or "
            f"use a new output path, which the launcher creates for that user)"
        )


def _job_container(documents: list[dict]) -> tuple[dict, dict]:
    """(pod spec, its one container) of the rendered Job."""
    jobs = [document for document in documents if document.get("kind") == "Job"]
    if len(jobs) != 1:
        raise SpecError(f"run --local --container needs exactly one Job in the rendered manifests, found {len(jobs)}")
    pod = jobs[0]["spec"]["template"]["spec"]
    if len(pod["containers"]) != 1:
        raise SpecError(f"run --local --container runs one container; the pod has {len(pod['containers'])}")
    return pod, pod["containers"][0]


def _byte_quantity(text: str) -> int:
    from kubernetes.utils.quantity import parse_quantity

    return int(parse_quantity(text))


def _security_context(pod: dict, container: dict) -> dict:
    """The pod's security context with the container's own settings over it (as Kubernetes applies them)."""
    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    unknown = set(context) - HANDLED_SECURITY
    if unknown:
        raise SpecError(f"run --local --container cannot reproduce securityContext {sorted(unknown)}")
    return context


def _security_arguments(context: dict) -> list[str]:
    """Engine flags reproducing a merged security context."""
    arguments = []
    if "runAsUser" in context:
        arguments += ["--user", f"{context['runAsUser']}:{context.get('runAsGroup', context['runAsUser'])}"]
    if "fsGroup" in context:
        arguments += ["--group-add", str(context["fsGroup"])]
    if context.get("readOnlyRootFilesystem"):
        arguments.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        arguments += ["--security-opt", "no-new-privileges"]
    for capability in context.get("capabilities", {}).get("drop", []):
        arguments += ["--cap-drop", capability]
    for capability in context.get("capabilities", {}).get("add", []):
        arguments += ["--cap-add", capability]
    seccomp = context.get("seccompProfile", {})
    if seccomp.get("type") not in (None, "RuntimeDefault"):  # RuntimeDefault is the engine's default profile
        raise SpecError(f"run --local --container cannot reproduce seccompProfile {seccomp}")
    return arguments


def _volume_arguments(pod: dict, container: dict, credentials: Path | None) -> list[str]:
    """emptyDirs as fresh anonymous volumes (removed with the container); a memory-backed /dev/shm as its size;
    a Secret volume as the `credentials` folder, read-only."""
    sources = {volume["name"]: volume for volume in pod.get("volumes", [])}
    arguments = []
    for mount in container.get("volumeMounts", []):
        volume = sources[mount["name"]]
        if "secret" in volume:
            if credentials is None:
                raise SpecError(
                    f"storage.credentials_secret: run --local --container makes the Secret's files from "
                    f"this machine's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; set both (for "
                    f"{volume['secret']['secretName']})"
                )
            arguments += ["--volume", f"{credentials}:{mount['mountPath']}:ro"]
            continue
        if "emptyDir" not in volume:
            raise SpecError(f"run --local --container can only reproduce emptyDir volumes, not {mount['name']}")
        empty_dir = volume["emptyDir"] or {}
        if mount["mountPath"] == "/dev/shm":
            arguments += ["--shm-size", str(_byte_quantity(empty_dir.get("sizeLimit", "64Mi")))]
        elif empty_dir.get("medium") == "Memory":
            arguments += ["--mount", f"type=tmpfs,destination={mount['mountPath']}"]
        else:
            arguments += ["--mount", f"type=volume,destination={mount['mountPath']}"]
    return arguments


def _resource_arguments(engine: Engine, container: dict) -> list[str]:
    """The container's limits: NVIDIA GPUs attached, the memory limit set."""
    limits = container.get("resources", {}).get("limits", {})
    devices = {name: count for name, count in limits.items() if name not in ("cpu", "memory", "ephemeral-storage")}
    arguments = []
    for name, count in devices.items():
        if name != "nvidia.com/gpu":
            raise SpecError(
                f"run --local --container can attach NVIDIA GPUs only, not {name}; set "
                f"resources.accelerators: 0 here, or run it in the cluster"
            )
        # podman attaches GPUs through CDI (nvidia-ctk cdi generate), docker through the NVIDIA runtime.
        arguments += ["--device", "nvidia.com/gpu=all"] if engine.is_podman else ["--gpus", str(count)]
    if "memory" in limits:
        arguments += ["--memory", str(_byte_quantity(limits["memory"]))]
    return arguments


def _environment(container: dict, uid: int, gid: int, maps_own_user: bool) -> tuple[list[str], list[str]]:
    """(engine -e flags, bind-mount flags), values literal."""
    variables, mounts = [], []
    for variable in container.get("env", []):
        name = variable["name"]
        if "valueFrom" in variable:
            raise SpecError(f"run --local --container cannot reproduce env {name} from {variable['valueFrom']}")
        value = unescape_expansion(variable.get("value", ""))
        path = (
            model_location(value)
            if name == "FT_MODEL"
            else (local_location(value) if name in READ_LOCATIONS + (OUTPUT_LOCATION,) else None)
        )
        if path is not None:
            if name == OUTPUT_LOCATION:
                prepare_output(path, uid, gid, maps_own_user)
                mounts.append(f"{path}:{path}")
                value = str(path)
            else:
                if not path.exists():
                    raise SpecError(f"{name}: {path} does not exist on this machine")
                if not maps_own_user and not _allowed(path, uid, gid, "rx" if path.is_dir() else "r"):
                    raise SpecError(
                        f"{name}: {path} is not readable by the image's user {uid}: chmod o+rx {path} "
                        f"(or chown it to {uid})"
                    )
                mounts.append(f"{path}:{path}:ro")
                value = str(path / Path(value).name) if name == "FT_MODEL" else str(path)
        variables += ["--env", f"{name}={value}"]
    return variables, [flag for mount in dict.fromkeys(mounts) for flag in ("--volume", mount)]


def container_command(
    engine: Engine,
    documents: list[dict],
    *,
    network: str | None,
    name: str | None = None,
    credentials: Path | None = None,
) -> list[str]:
    """The engine's `run` command line for the rendered Job's one container."""
    pod, container = _job_container(documents)
    context = _security_context(pod, container)
    uid = int(context.get("runAsUser", 0))
    gid = int(context.get("runAsGroup", uid))
    # Rootless podman maps the invoking user to the container's user, so host folders stay the user's own.
    maps_own_user = engine.is_podman and os.geteuid() != 0
    command = [engine.command, "run", "--rm", "--pull", "missing"]
    if name:
        command += ["--name", name]
    if maps_own_user:
        command.append(f"--userns=keep-id:uid={uid},gid={gid}")
    if network:
        command += ["--network", network]
    variables, mounts = _environment(container, uid, gid, maps_own_user)
    command += _security_arguments(context) + _volume_arguments(pod, container, credentials)
    command += _resource_arguments(engine, container) + mounts + variables
    entrypoint, *arguments = container["command"]
    return [*command, "--entrypoint", entrypoint, container["image"], *arguments, *container.get("args", [])]


def run_container(spec: JobSpec, engine: Engine, network: str | None) -> int:
    """Run the job's container here; 0 when the job succeeded, 1 when it failed."""
    from launcher.local import job_outcome, require_one_pod

    require_one_pod(spec)
    with tempfile.TemporaryDirectory(prefix="finetune-credentials-") as folder:
        return job_outcome(_run(spec, engine, network, Path(folder) / "s3"))


def _run(spec: JobSpec, engine: Engine, network: str | None, credentials: Path) -> int:
    from launcher.local import write_credentials
    from launcher.render import manifests

    documents = manifests(spec)
    pod, container = _job_container(documents)
    context = _security_context(pod, container)
    # As root the files go to the container's user; rootless podman maps this user to it.
    owner = (int(context.get("runAsUser", 0)), int(context.get("runAsGroup", 0))) if os.geteuid() == 0 else None
    written = bool(spec.storage.credentials_secret) and write_credentials(credentials, owner)
    command = container_command(
        engine,
        documents,
        network=network,
        name=f"{spec.name}-{os.getpid()}",
        credentials=credentials if written else None,
    )
    process = subprocess.Popen(command)

    def forward(signum: int, _frame) -> None:  # the engine passes the signal on to the container
        process.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if code == ENGINE_START_FAILURE:
        raise EngineFailed(
            f"{engine.name} could not start the container (its message is above); for a missing "
            f"image, build it with `make image` or set image: in the spec"
        )
    return code
