"""Errors the job reports as one clear line, each with the exit code the Job's failure policy acts on."""

from __future__ import annotations

from contract.exits import BAD_INPUT as EXIT_BAD_INPUT
from contract.exits import CONFLICT as EXIT_CONFLICT
from contract.exits import INTERNAL as EXIT_INTERNAL
from contract.exits import OK as EXIT_OK
from contract.exits import TERMINATED as EXIT_TERMINATED
from contract.exits import UNAVAILABLE as EXIT_UNAVAILABLE

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CONFLICT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_UNAVAILABLE",
    "BadInput",
    "Conflict",
    "JobError",
    "Terminated",
    "Unavailable",
]


class JobError(Exception):
    """A failure with a message that names the problem and the fix."""

    exit_code = EXIT_INTERNAL


class BadInput(JobError):
    """Configuration, data, hub entry or checkpoint that is wrong: fix it, then run again."""

    exit_code = EXIT_BAD_INPUT


class Unavailable(JobError):
    """A remote location did not answer or failed transiently: the same run may succeed later."""

    exit_code = EXIT_UNAVAILABLE


class Conflict(JobError):
    """Another writer committed the same step to the same output."""

    exit_code = EXIT_CONFLICT


class Terminated(JobError):
    """The process was asked to stop (SIGTERM) and stopped cleanly."""

    exit_code = EXIT_TERMINATED
