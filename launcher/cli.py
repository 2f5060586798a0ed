"""`launcher`: render, validate, run and submit fine-tuning jobs, and follow them in the cluster.

Exit codes: 0 succeeded, 1 the job failed, 2 bad spec or usage, 3 the API refused, 4 timed out,
5 the job succeeded but its metrics miss a --require bar (or cannot be read).
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
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec key, e.g. --set settings.epochs=5 (repeatable)",
    )


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
    spec = load_spec(arguments.spec, arguments.overrides)
    if arguments.container:
        from launcher.container import run_container
        from launcher.engine import find_engine

        if arguments.workdir is not None:
            raise SpecError("--workdir is for the host run; with --container the volumes are fresh, as in a pod")
        return run_container(spec, find_engine(), arguments.network)
    if arguments.network is not None:
        raise SpecError("--network needs --container")
    return run_local(spec, arguments.workdir)


def _connection(arguments: argparse.Namespace):
    from launcher.cluster import connect

    return connect(arguments.kubeconfig, arguments.context, arguments.namespace)


def _report(arguments: argparse.Namespace, document: dict, text: str) -> None:
    print(json.dumps(document) if arguments.output == "json" else text)


def _follow(arguments: argparse.Namespace, connection, name: str) -> int:
    """Stream logs (with --follow) and wait for the end; 0 when the Job succeeded, 1 when it failed."""
    from launcher.cluster import stream_logs, wait

    if getattr(arguments, "follow", False):
        for line in stream_logs(connection, name, follow=True):
            print(line, flush=True)
    interactive = sys.stderr.isatty() and arguments.output != "json"

    def show(job: dict) -> None:
        if interactive:
            counts = job.get("status") or {}
            print(
                f"\r{name}: active {counts.get('active', 0)}, succeeded {counts.get('succeeded', 0)}, failed "
                f"{counts.get('failed', 0)}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    state = wait(connection, name, arguments.timeout, show)
    if interactive:
        print(file=sys.stderr)
    _report(arguments, {"name": name, "state": state}, f"{name}: {state}")
    return 0 if state == "Succeeded" else 1


def _command_submit(arguments: argparse.Namespace) -> int:
    from launcher.cluster import submit
    from launcher.render import manifests

    from launcher.gate import Requirement, check

    spec = load_spec(arguments.spec, arguments.overrides)
    requirements = [Requirement.parse(text) for text in arguments.require]
    documents = manifests(spec)
    if arguments.namespace:
        for document in documents:
            document["metadata"]["namespace"] = arguments.namespace
    connection = _connection(arguments)
    created = submit(connection, documents, arguments.dry_run)
    verb = "validated by the server (dry run)" if arguments.dry_run else "created"
    if not (arguments.wait or arguments.follow or requirements) or arguments.dry_run:
        _report(arguments, {"created": created, "dry_run": arguments.dry_run}, f"{', '.join(created)} {verb}")
        return 0
    print(f"{', '.join(created)} {verb}", file=sys.stderr)
    connection.namespace = documents[0]["metadata"]["namespace"]
    outcome = _follow(arguments, connection, spec.name)
    if outcome != 0 or not requirements:
        return outcome
    met = check(spec, requirements)
    _report(
        arguments,
        {"name": spec.name, "quality_gate": "passed", "metrics": met},
        f"quality gate passed: {', '.join(f'{name}={value:g}' for name, value in met.items())}",
    )
    return 0


def _command_status(arguments: argparse.Namespace) -> int:
    from launcher.cluster import status

    found = status(_connection(arguments), arguments.name)
    _report(
        arguments,
        found,
        f"{found['name']}: {found['state']} (active {found['active']}, succeeded "
        f"{found['succeeded']}, failed {found['failed']})",
    )
    return {"Succeeded": 0, "Failed": 1}.get(found["state"], 0)


def _command_wait(arguments: argparse.Namespace) -> int:
    return _follow(arguments, _connection(arguments), arguments.name)


def _command_logs(arguments: argparse.Namespace) -> int:
    from launcher.cluster import stream_logs

    for line in stream_logs(_connection(arguments), arguments.name, arguments.follow):
        print(line, flush=True)
    return 0


def _command_cancel(arguments: argparse.Namespace) -> int:
    from launcher.cluster import cancel

    cancel(_connection(arguments), arguments.name)
    _report(arguments, {"name": arguments.name, "cancelled": True}, f"{arguments.name}: cancelled")
    return 0


def _command_list(arguments: argparse.Namespace) -> int:
    from launcher.cluster import list_jobs

    jobs = list_jobs(_connection(arguments))
    _report(
        arguments,
        {"jobs": jobs},
        "\n".join(f"{job['name']:<40} {job['state']:<10} {job['created']}" for job in jobs) or "no jobs",
    )
    return 0


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the in-cluster service account)"
    )
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's, or default)")
    parser.add_argument("--output", choices=["text", "json"], default="text")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="launcher", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser("render", help="print the Kubernetes manifests of a spec")
    _spec_arguments(render)
    render.set_defaults(handler=_command_render)

    validate = commands.add_parser(
        "validate", help="validate the manifests strictly against Kubernetes schemas, offline"
    )
    _spec_arguments(validate)
    validate.add_argument(
        "-k",
        "--kubernetes-version",
        action="append",
        choices=KUBERNETES_VERSIONS,
        help=f"Kubernetes version (repeatable; default {KUBERNETES_VERSIONS[-1]})",
    )
    validate.add_argument("--output", choices=["text", "json"], default="text")
    validate.set_defaults(handler=_command_validate)

    run = commands.add_parser(
        "run", help="run the job on this machine with the environment the manifest gives the container"
    )
    _spec_arguments(run)
    run.add_argument("--local", action="store_true", required=True, help="run here, not in a cluster")
    run.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="local stand-in for the container's /scratch and /cache volumes (default .launcher/<name>)",
    )
    run.add_argument(
        "--container",
        action="store_true",
        help="run the spec's image with the pod's environment, user, read-only root and volumes "
        "(podman or docker; CONTAINER_ENGINE chooses)",
    )
    run.add_argument(
        "--network",
        default=None,
        metavar="MODE",
        help="with --container: the engine's network (none, host, ...; default: the engine's own)",
    )
    run.set_defaults(handler=_command_run)

    submit = commands.add_parser("submit", help="create the Job in the cluster")
    _spec_arguments(submit)
    _cluster_arguments(submit)
    submit.add_argument("--dry-run", action="store_true", help="server-side dry run: validated, not created")
    submit.add_argument("--wait", action="store_true", help="follow the Job to its end; exit 0 or 1")
    submit.add_argument("--follow", action="store_true", help="stream the logs, then wait")
    submit.add_argument("--timeout", type=float, default=None, help="seconds to wait before exit 4")
    submit.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="METRIC>=VALUE",
        help="quality gate on metrics.json's summary after success, e.g. top1>=0.9 (repeatable; "
        "implies --wait; exit 5 when not met)",
    )
    submit.set_defaults(handler=_command_submit)

    for name, handler, text in (
        ("status", _command_status, "show a Job's state"),
        ("wait", _command_wait, "wait for a Job to end; exit 0 or 1, 4 on timeout"),
        ("logs", _command_logs, "print a Job's logs"),
        ("cancel", _command_cancel, "delete a Job and its pods"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("name", help="Job name")
        _cluster_arguments(command)
        if name == "wait":
            command.add_argument("--timeout", type=float, default=None, help="seconds before exit 4")
        if name == "logs":
            command.add_argument("-f", "--follow", action="store_true", help="keep streaming")
        command.set_defaults(handler=handler)

    listing = commands.add_parser("list", help="list the Jobs the launcher created")
    _cluster_arguments(listing)
    listing.set_defaults(handler=_command_list)
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
