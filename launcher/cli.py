"""`launcher`: render, validate and run fine-tuning job specs.

Exit codes: 0 succeeded, 1 the job failed, 2 bad spec or usage, 3 the API refused, 4 timed out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from launcher.errors import LauncherError, SpecError
from launcher.spec import load_spec

KUBERNETES_VERSIONS = ["1.29", "1.30", "1.31", "1.32", "1.33"]


def _spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="job spec (YAML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec key, e.g. --set settings.epochs=5 (repeatable)")


def _command_render(arguments: argparse.Namespace) -> int:
    from launcher.render import render

    sys.stdout.write(render(load_spec(arguments.spec, arguments.overrides)))
    return 0


def _command_validate(arguments: argparse.Namespace) -> int:
    from launcher.render import manifests
    from launcher.validate import validate_manifests

    documents = manifests(load_spec(arguments.spec, arguments.overrides))
    versions = arguments.kubernetes_version or [KUBERNETES_VERSIONS[-1]]
    problems = validate_manifests(documents, versions)
    if arguments.output == "json":
        print(json.dumps({"valid": not problems, "versions": versions, "problems": problems}))
    elif not problems:
        print(f"{arguments.spec}: {len(documents)} manifests valid for Kubernetes {', '.join(versions)} (strict)")
    if problems:
        raise SpecError(f"{arguments.spec}: " + "; ".join(problems))
    return 0


def _command_run(arguments: argparse.Namespace) -> int:
    from launcher.local import run_local

    if not arguments.local:
        raise SpecError("run needs --local (this command runs the job on this machine); use submit for a cluster")
    return run_local(load_spec(arguments.spec, arguments.overrides), arguments.workdir)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="launcher", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser("render", help="print the Kubernetes manifests of a spec")
    _spec_arguments(render)
    render.set_defaults(handler=_command_render)

    validate = commands.add_parser("validate", help="validate the manifests strictly against Kubernetes schemas, "
                                                    "offline")
    _spec_arguments(validate)
    validate.add_argument("-k", "--kubernetes-version", action="append", choices=KUBERNETES_VERSIONS,
                          help=f"Kubernetes version (repeatable; default {KUBERNETES_VERSIONS[-1]})")
    validate.add_argument("--output", choices=["text", "json"], default="text")
    validate.set_defaults(handler=_command_validate)

    run = commands.add_parser("run", help="run the job on this machine with the environment the manifest gives "
                                          "the container")
    _spec_arguments(run)
    run.add_argument("--local", action="store_true", required=True, help="run here, not in a cluster")
    run.add_argument("--workdir", type=Path, default=None,
                     help="local stand-in for the container's /scratch and /cache volumes "
                          "(default .launcher/<name>)")
    run.set_defaults(handler=_command_run)
    return root


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        return arguments.handler(arguments)
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

