"""Launcher failures and their exit codes."""

from __future__ import annotations

EXIT_SUCCEEDED = 0
EXIT_JOB_FAILED = 1
EXIT_BAD_SPEC = 2
EXIT_API_REFUSED = 3
EXIT_TIMED_OUT = 4
EXIT_BELOW_BAR = 5
EXIT_STUCK = 6  # the Job will not run to its end on its own (image pull, missing Secret, deadline exceeded)
EXIT_INTERNAL = 1  # an unexpected fault of the launcher itself (its traceback with --debug)


class LauncherError(Exception):
    """A failure reported as one `error:` line with its exit code."""

    exit_code = EXIT_JOB_FAILED


class SpecError(LauncherError):
    """A spec or command line that is wrong; the message names the key and the fix."""

    exit_code = EXIT_BAD_SPEC


class ApiRefused(LauncherError):
    """The Kubernetes API refused a request (its own message is kept) or could not be reached."""

    exit_code = EXIT_API_REFUSED


class TimedOut(LauncherError):
    """A wait ran out of time before the Job ended."""

    exit_code = EXIT_TIMED_OUT
