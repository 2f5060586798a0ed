"""The job's exit codes and what each means; the Job's podFailurePolicy and the launcher act on them."""

from __future__ import annotations

OK = 0
INTERNAL = 1  # an unexpected fault; worth a retry, and worth a bug report
BAD_INPUT = 2  # bad configuration or input; a retry cannot help
UNAVAILABLE = 3  # a hub, a mirror or storage could not be reached; worth a retry
CONFLICT = 4  # another run commits to the same FT_OUTPUT; a retry resumes from what it committed
TERMINATED = 143  # SIGTERM (preemption, eviction, deletion): a retry resumes from the last commit

MEANINGS = {
    OK: "done",
    BAD_INPUT: "bad configuration or input (do not retry)",
    UNAVAILABLE: "hub or storage unreachable (retry)",
    CONFLICT: "another run writes the same FT_OUTPUT",
    TERMINATED: "stopped by SIGTERM (retry resumes)",
    INTERNAL: "unexpected error (retry)",
}
