"""Container entrypoint: `python -m job`. Configuration comes only from FT_* environment variables."""

from __future__ import annotations

import json
import sys
import traceback

from job import distributed, msrun
from job.config import help_text, load_settings
from job.device import prepare_process
from job.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, JobError
from job.progress import Progress


def main(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(help_text())
        return EXIT_OK
    if argv not in ([], ["--check"]):
        print(
            f"error: unexpected arguments {' '.join(argv)}; the job is configured by FT_* environment "
            f"variables (python -m job --help)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
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
            summary = run(settings, progress)
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
    if sys.stdout.isatty():
        from contract.display import rounded

        print("[done] " + rounded(summary), flush=True)
    else:
        print(json.dumps(summary), flush=True)
    return EXIT_OK


if __name__ == "__main__":
    exit_code = main(sys.argv[1:])
    msrun.record_exit(exit_code)
    sys.exit(exit_code)
