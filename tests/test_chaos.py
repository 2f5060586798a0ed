"""Chaos: one run killed with SIGKILL at random moments and resumed each time, then left to finish, on a local
directory and a real S3 server.

After each attempt: it exited 0 or was killed (never failed), every manifest names complete files, and it resumed
from the newest epoch committed before its launch. At the end: each epoch once in metrics.json, exactly the
retained manifests, no leftover uploads, and the uninterrupted run's schedule, losses and top-1 (within 0.01).

The moments come from CHAOS_SEED (printed; set it to replay a failure's sequence of moments).
"""

from __future__ import annotations

import pytest

import os
import random
import signal
import time
from dataclasses import dataclass

from conftest import Reference, assert_committed, assert_same_training, environment, unfinished_uploads
from jobprocess import JobProcess, event
from job.checkpoints import ATTEMPTS, CheckpointLog
from job.run_record import completed_summary
from job.storage import Store, open_store

pytestmark = pytest.mark.slow  # trains with MindSpore or runs a heavy tool: not in make test-fast

KILLS = 10
DEFAULT_SEED = 20251128
KEEP = 1  # retention deletes after every commit, so kills also land in the middle of one
# Kinds of moments, drawn first, and the field naming the event: start-up and resume (launch), model compilation
# (start), training and evaluation (step), saving and committing (epoch), retention and the next epoch (committed).
KINDS = {"launch": None, "start": None, "step": "step", "epoch": "epoch", "committed": "epoch"}
EVENT_TIMEOUT = 180


@dataclass(frozen=True)
class KillMoment:
    """`delay` seconds after an attempt's event of `kind` with `fields` (kind "launch": after its launch)."""

    kind: str
    fields: dict
    delay: float

    def __str__(self) -> str:
        fields = "".join(f" {name}={value}" for name, value in self.fields.items())
        return f"{self.delay:.2f} s after {self.kind}{fields}"

    def wait(self, job: JobProcess) -> None:
        if self.kind == "launch":
            time.sleep(max(0.0, job.launched + self.delay - time.time()))
            return
        job.wait_for(event(self.kind, **self.fields), timeout=EVENT_TIMEOUT)
        time.sleep(self.delay)


def _anchors(found: dict, committed: int, finished: bool) -> bool:
    """Whether an attempt started when epoch `committed` was the newest committed one emits this event too."""
    kind = found["event"]
    if kind == "launch":
        return True
    if finished or kind not in KINDS:  # a finished output is only reported: no event before the summary
        return False
    return kind == "start" or found["epoch"] > committed


def kill_moment(rng: random.Random, reference: JobProcess, committed: int, finished: bool) -> KillMoment:
    """A moment of an attempt started when epoch `committed` was the newest committed one: an event it emits
    (or its launch), drawn kind first so every phase gets kills, then a delay uniform over the time to the next
    event of the uninterrupted reference run."""
    timeline = sorted(
        [
            (reference.launched, {"event": "launch"}),
            (reference.ended, {"event": "exit"}),
            *((found["time"], found) for found in reference.events()),
        ],
        key=lambda moment: moment[0],
    )
    candidates: dict[str, list[tuple[dict, float]]] = {}
    for (at, found), (following, _) in zip(timeline, timeline[1:]):
        if _anchors(found, committed, finished):
            candidates.setdefault(found["event"], []).append((found, following - at))
    kind = rng.choice([kind for kind in KINDS if kind in candidates])
    found, gap = rng.choice(candidates[kind])
    field = KINDS[kind]
    fields = {field: found[field]} if field else {}
    return KillMoment(kind, fields, rng.uniform(0.0, gap))


def committed_epochs(store: Store, context: str) -> set[int]:
    """The committed epochs; a manifest never names a file that is missing or incomplete."""
    sizes = {info.key: info.size for info in store.list(ATTEMPTS)}
    manifests = CheckpointLog(store, "observer").manifests()
    for manifest in manifests:
        for entry in manifest.files:
            assert sizes.get(entry["key"]) == entry["size"], (
                f"epoch {manifest.epoch}'s manifest names {entry['key']}, missing or incomplete; {context}"
            )
    return {manifest.epoch for manifest in manifests}


def check_resume(job: JobProcess, committed: set[int], finished: bool, context: str) -> None:
    """The attempt resumed from the newest epoch committed before its launch (an older one only after reporting
    the newer damaged), or started afresh when there was none: never from anything else; a finished output is
    not trained again."""
    assert not (finished and job.events("start")), f"a finished output was trained again; {context}"
    resumed = [found["epoch"] for found in job.events("resumed")]
    skipped = {found["epoch"] for found in job.events("checkpoint_skipped")}
    assert set(resumed) <= committed and len(resumed) <= 1, f"resumed {resumed}, committed {committed}; {context}"
    newest = max(committed - skipped, default=0)
    for start in job.events("start"):
        assert start["first_epoch"] == newest + 1 and resumed == ([newest] if newest else []), (
            f"started at epoch {start['first_epoch']} (resumed {resumed}) with {committed} committed; {context}"
        )


def test_run_killed_at_random_moments_ends_like_an_uninterrupted_one(
    hub_and_data, uninterrupted: Reference, output_location, tmp_path
):
    """KILLS attempts killed at random moments, then one left to finish."""
    seed = int(os.environ.get("CHAOS_SEED", DEFAULT_SEED))
    print(f"CHAOS_SEED={seed}")
    rng = random.Random(seed)
    scratch = tmp_path / "scratch"  # killed attempts leave their staged checkpoints here
    scratch.mkdir()
    settings = environment(hub_and_data, output_location, FT_KEEP_CHECKPOINTS=str(KEEP), FT_SCRATCH_DIR=str(scratch))
    store = open_store(output_location)
    attempts: list[str] = []  # what happened, in every assertion message
    for number in range(1, KILLS + 2):
        context = f"CHAOS_SEED={seed}, attempt {number}, earlier: {attempts}"
        committed = committed_epochs(store, context)
        finished = completed_summary(store) is not None
        moment = kill_moment(rng, uninterrupted.job, max(committed, default=0), finished) if number <= KILLS else None
        job = JobProcess(settings)
        if moment is not None:
            try:
                moment.wait(job)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; {context}") from None
            job.signal(signal.SIGKILL)
        code = job.finish()
        assert job.ended is not None, context  # set when the job closed its stdout, before it exited
        attempts.append(
            f"{number}: committed {sorted(committed)}{', finished' if finished else ''}, "
            f"{moment or 'no kill'} -> exit {code} after {job.ended - job.launched:.1f} s"
        )
        context = f"CHAOS_SEED={seed}, attempts: {attempts}"
        expected = (0, -signal.SIGKILL) if moment is not None else (0,)
        assert code in expected, f"{context}; stderr: {job.stderr[-2000:]}"
        check_resume(job, committed, finished, context)
    print("\n".join(attempts))

    metrics = assert_committed(output_location, len(uninterrupted.metrics["history"]), KEEP, context)
    assert not unfinished_uploads(store), context
    assert_same_training(metrics["history"], uninterrupted.metrics["history"], context)
    top1, expected_top1 = metrics["summary"]["top1"], uninterrupted.metrics["summary"]["top1"]
    assert abs(top1 - expected_top1) <= 0.01, f"top-1 {top1}, uninterrupted {expected_top1}; {context}"
