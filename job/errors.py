"""Errors the job reports as one clear line, each with the exit code the Job's failure policy acts on."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1  # an unexpected fault; worth a retry, and worth a bug report
EXIT_BAD_INPUT = 2  # bad configuration or input; a retry cannot help
EXIT_UNAVAILABLE = 3  # a hub, a mirror or storage could not be reached; worth a retry


class JobError(Exception):
    """A failure with a message that names the problem and the fix."""

    exit_code = EXIT_INTERNAL


class BadInput(JobError):
    """Configuration, data, hub entry or checkpoint that is wrong: fix it, then run again."""

    exit_code = EXIT_BAD_INPUT


class Unavailable(JobError):
    """A remote location did not answer or failed transiently: the same run may succeed later."""

    exit_code = EXIT_UNAVAILABLE


EXIT_CONFLICT = 4  # another run commits to the same FT_OUTPUT; a retry resumes from what it committed
EXIT_TERMINATED = 143  # SIGTERM (preemption, eviction, deletion): a retry resumes from the last commit


class Conflict(JobError):
    """Another writer committed the same step to the same output."""

    exit_code = EXIT_CONFLICT


class Terminated(JobError):
    """The process was asked to stop (SIGTERM) and stopped cleanly."""

    exit_code = EXIT_TERMINATED
