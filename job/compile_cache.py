"""MindSpore's compiled-graph cache, keyed on everything that shapes the graphs, and carried with checkpoints.

MindSpore's own cache (MS_COMPILER_CACHE_ENABLE / MS_COMPILER_CACHE_PATH) checks only the source files of the
entry script: a cache written for 5 classes is loaded for 7 and the run crashes in the optimizer. So each graph
configuration (the settings that reach the graphs, the class count, steps per epoch, processes, MindSpore's
version and the job's code) gets a directory of its own.

MindSpore reads the cache path at the first compilation of a process and numbers the cached graphs in the order
it compiles them (rank_N/graph_cache/compile_cache_<i>.mindir): so a process caches one run at most (a second run
in the same process compiles without the cache), and a run whose graphs would come in another order (a resume
with no epoch left to train, which only evaluates) does not use it. A directory in use by one process is locked
per rank: a second process of the same configuration and rank at the same time compiles without it.

A pod's cache volume is gone when the pod is; the cache also travels as one archive in every committed
checkpoint (job.runner), so a resumed pod unpacks it instead of compiling from nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path
from typing import IO

from contract.settings import Settings

ARCHIVE = "compile_cache.tar"
LOCKS = ".locks"  # under FT_COMPILE_CACHE_DIR: a lock file per configuration directory and rank
KEEP_CONFIGURATIONS = 8  # directories kept under FT_COMPILE_CACHE_DIR, most recently used first
CODE_ROOTS = ("job", "contract", "mindspore_hub")  # packages whose code builds the graphs
# Settings that never reach a graph: where things are, how storage is reached, when to log or evaluate.
NOT_IN_GRAPHS = frozenset(
    {
        "hub_mirror",
        "hub_cache",
        "hub_offline",
        "train_data",
        "eval_data",
        "output",
        "data_cache",
        "compile_cache",
        "compile_cache_dir",
        "scratch_dir",
        "num_classes",  # the class count found in the data is part of the key instead
        "device_id",
        "worker_service",
        "master_port",
        "master_wait_seconds",
        "num_workers",
        "log_every",
        "eval_every",
        "keep_checkpoints",
        "gc_min_age_seconds",
        "term_grace_seconds",
        "flush_timeout_seconds",
        "s3_retry_mode",
        "s3_max_attempts",
        "s3_connect_timeout",
        "s3_read_timeout",
        "s3_checksums",
        "s3_credentials_dir",
    }
)


def _code_digest(roots: list[Path]) -> str:
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def configuration_key(
    settings: Settings, num_classes: int, images: tuple[int, int], steps_per_epoch: int, processes: int
) -> str:
    """A name for the graphs this run compiles: equal keys mean identical graphs. The image counts (training,
    evaluation) are part of it: a smaller last batch (the frozen-backbone feature pass) or an evaluation set
    smaller than a batch compiles another graph."""
    import mindspore as ms

    here = Path(__file__).resolve().parents[1]
    code = [here / name for name in CODE_ROOTS if (here / name).is_dir()]
    if settings.hub_network_dir is not None:
        code.append(settings.hub_network_dir)
    shaping = settings.model_dump(mode="json", exclude=set(NOT_IN_GRAPHS))
    document = {
        "settings": shaping,
        "num_classes": num_classes,
        "images": list(images),
        "steps_per_epoch": steps_per_epoch,
        "processes": processes,
        "mindspore": ms.__version__,
        "code": _code_digest(code),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:20]


def disable() -> None:
    """Compile without the cache from now on (MindSpore reads this at every compilation)."""
    os.environ["MS_COMPILER_CACHE_ENABLE"] = "0"


_held_lock: IO | None = None  # this process's lock on the one directory it uses, held until it exits


def _try_lock(path: Path) -> IO | None:
    """An exclusive lock on `path` (created if missing), or None when another process holds it."""
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _extract_files(tar: tarfile.TarFile, target: Path) -> None:
    """Only regular files and directories, only under `target` (tarfile's "data" filter, which Python before
    3.11.4 lacks, does more; the archive is this job's own, checked by its sha256 before)."""
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in parts:
            raise tarfile.TarError(f"{member.name!r} is not a file of a compile cache")
    if hasattr(tarfile, "data_filter"):
        tar.extractall(target, filter="data")
    else:
        tar.extractall(target)


class CompileCache:
    """One configuration's cache directory, in use by this process from `enable()` on."""

    def __init__(self, root: Path, key: str, rank: int = 0) -> None:
        self.root = root
        self.key = key
        self.rank = rank  # MindSpore keeps each rank's graphs in rank_<N>/: the ranks of a pod share the directory
        self.directory = root / key
        self.warm = False  # it held compiled graphs before this run compiled anything
        self.enabled = False
        self._packed: list[tuple[str, int, int]] | None = None  # the listing the last archive holds
        self._archive: Path | None = None
        self._versions = 0

    def enable(self) -> bool:
        """Point MindSpore at the directory and prune the least recently used ones; False (and the cache off)
        when this process already cached a run, another process uses the directory, or the process has no entry
        script (MindSpore's cache hashes it, and fails without one)."""
        global _held_lock
        if not Path(sys.argv[0]).is_file():  # `python -c`, a REPL: MindSpore's cache reads the entry script
            disable()
            return False
        locks = self.root / LOCKS
        locks.mkdir(parents=True, exist_ok=True)
        lock = None if _held_lock is not None else _try_lock(locks / f"{self.key}.rank{self.rank}")
        if lock is None:
            disable()
            return False
        _held_lock = lock
        self.directory.mkdir(parents=True, exist_ok=True)
        self.warm = self._holds_graphs()
        os.utime(self.directory)
        self._prune()
        os.environ["MS_COMPILER_CACHE_ENABLE"] = "1"
        os.environ["MS_COMPILER_CACHE_PATH"] = str(self.directory)
        self.enabled = True
        return True

    def _prune(self) -> None:
        """Remove all but the KEEP_CONFIGURATIONS most recently used directories, except those in use."""
        directories = sorted(
            (path for path in self.root.iterdir() if path.is_dir() and path.name != LOCKS),
            key=lambda path: path.stat().st_mtime,
        )
        for stale in directories[:-KEEP_CONFIGURATIONS]:
            paths = sorted((self.root / LOCKS).glob(f"{stale.name}.rank*"))
            held = [lock for lock in map(_try_lock, paths) if lock is not None]
            if len(held) == len(paths):  # no process uses it
                shutil.rmtree(stale, ignore_errors=True)
                for path in paths:
                    path.unlink(missing_ok=True)
            for lock in held:
                lock.close()

    def stop(self) -> None:
        """Compile without the cache from now on."""
        disable()
        self.enabled = False

    @property
    def state(self) -> str:
        """What this run's compilations use: "warm" (cached graphs), "cold" (a new cache) or "off"."""
        return ("warm" if self.warm else "cold") if self.enabled else "off"

    def _holds_graphs(self) -> bool:
        return self.directory.is_dir() and any(path.is_file() for path in self.directory.rglob("*"))

    def unpack(self, archive: Path) -> bool:
        """Fill an empty directory from a committed archive (already verified by its sha256); True if used.
        Raises tarfile.TarError for an archive that is not one."""
        if self._holds_graphs():
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            _extract_files(tar, self.directory)
        self.warm = self._holds_graphs()
        return self.warm

    def pack(self, folder: Path) -> Path | None:
        """The directory as one archive in `folder` (None while it is empty). A new archive is written only when
        the directory changed since the last call; an archive once written is never rewritten, so one being
        uploaded stays as it was hashed."""
        listing = sorted(
            (str(path.relative_to(self.directory)), status.st_size, status.st_mtime_ns)
            for path in self.directory.rglob("*")
            if path.is_file()
            for status in (path.stat(),)
        )
        if not listing:
            return None
        if listing != self._packed or self._archive is None:
            self._archive = folder / f"compile-cache-{self._versions}.tar"
            self._versions += 1
            staging = self._archive.with_name(self._archive.name + ".part")
            with tarfile.open(staging, "w") as tar:
                for name, _, _ in listing:
                    tar.add(self.directory / name, arcname=name)
            staging.replace(self._archive)
            self._packed = listing
        return self._archive
