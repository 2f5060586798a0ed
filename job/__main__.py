"""Container entrypoint: `python -m job` fine-tunes, configured only by FT_* environment variables;
`python -m job predict` classifies images with a finished run's model; `python -m job publish` makes a finished
run a hub entry."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable

from job import distributed, msrun
from job.config import help_text, load_settings
from job.device import prepare_process
from job.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, JobError
from job.progress import Progress


def _train(argv: list[str]) -> dict | int:
    settings = load_settings()
    if argv == ["--check"]:
        from job.preflight import check

        print(json.dumps(check(settings)))
        return EXIT_OK
    if settings.world_size > 1 and distributed.role() is None:
        return msrun.launch(settings)  # this pod's workers run this entrypoint again, under msrun
    prepare_process(settings.device_target)
    if distributed.role() == distributed.SCHEDULER:
        distributed.serve_scheduler()
        return EXIT_OK
    from job.runner import run  # imports MindSpore, after the process environment is prepared

    with Progress() as progress:
        return run(settings, progress)


def _predict(argv: list[str]) -> dict:
    from job.prediction.options import load_predict_settings

    settings = load_predict_settings(argv)
    prepare_process(settings.device_target)
    from job.prediction.run import predict_images  # imports MindSpore, after the process environment is prepared

    with Progress() as progress:
        return predict_images(settings, progress)


def _publish(argv: list[str]) -> dict:
    from job.publishing import publish_command

    return publish_command(argv)


def _guarded(command: Callable[[list[str]], dict | int], argv: list[str]) -> int:
    """Run a command: its result printed as the last line, every failure as one `error:` line and its exit code."""
    try:
        result = command(argv)
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected fault: keep the traceback for a bug report, end with one line
        traceback.print_exc()
        print(
            f"error: unexpected {type(exc).__name__}: {exc}; this is a bug, please report it with the traceback above",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    if isinstance(result, int):
        return result
    if sys.stdout.isatty():
        from contract.display import rounded

        print("[done] " + rounded(result), flush=True)
    else:
        print(json.dumps(result), flush=True)
    return EXIT_OK


COMMANDS: dict[str, Callable[[list[str]], dict]] = {"predict": _predict, "publish": _publish}


def main(argv: list[str]) -> int:
    if argv[:1] and argv[0] in COMMANDS:  # a command's own --help is argparse's
        return _guarded(COMMANDS[argv[0]], argv[1:])
    if any(arg in ("-h", "--help") for arg in argv):
        print(help_text())
        return EXIT_OK
    if argv not in ([], ["--check"]):
        print(
            f"error: unexpected arguments {' '.join(argv)}; the job is configured by FT_* environment "
            f"variables (python -m job --help); python -m job predict|publish --help for the other commands",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    return _guarded(_train, argv)


if __name__ == "__main__":
    exit_code = main(sys.argv[1:])
    msrun.record_exit(exit_code)
    sys.exit(exit_code)
