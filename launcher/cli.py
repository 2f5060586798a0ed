"""`launcher`: render, validate, run and submit fine-tuning jobs, and follow them in the cluster.

Exit codes: 0 succeeded, 1 the job failed (or an unexpected error: rerun with --debug), 2 bad spec, usage
or configuration, 3 the API or the output store refused or cannot be reached, 4 timed out, 5 the job succeeded
but its metrics miss a --require bar (or cannot be read), 6 stuck: the Job will not run to its end on its own
(an image that cannot be pulled, a missing Secret, its deadline exceeded).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

from launcher.errors import EXIT_INTERNAL, EXIT_JOB_FAILED, EXIT_STUCK, LauncherError, SpecError
from launcher.spec import load_spec

KUBERNETES_VERSIONS = ["1.29", "1.30", "1.31", "1.32", "1.33"]


def _spec_arguments(parser: argparse.ArgumentParser, what: str = "job spec (YAML)") -> None:
    parser.add_argument("spec", type=Path, help=what)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec key, e.g. --set settings.epochs=5 (repeatable)",
    )


def _output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", choices=["text", "json"], default="text", help="json: one JSON document, errors included"
    )


def _json(arguments: argparse.Namespace) -> bool:
    return getattr(arguments, "output", "text") == "json"


def _report(arguments: argparse.Namespace, document: dict, text: str) -> None:
    print(json.dumps(document) if _json(arguments) else text, flush=True)


def _command_render(arguments: argparse.Namespace) -> int:
    from launcher.render import manifests, render

    spec = load_spec(arguments.spec, arguments.overrides)
    if _json(arguments):
        print(json.dumps(manifests(spec)))
    else:
        sys.stdout.write(render(spec))
    return 0


def _strict_problems(documents: list[dict], versions: list[str]) -> list[str]:
    from launcher.validate import validate_manifests

    return validate_manifests(documents, versions)


def _command_validate(arguments: argparse.Namespace) -> int:
    from launcher.render import manifests

    documents = manifests(load_spec(arguments.spec, arguments.overrides))
    versions = arguments.kubernetes_version or [KUBERNETES_VERSIONS[-1]]
    problems = _strict_problems(documents, versions)
    if problems:
        raise SpecError(f"{arguments.spec}: " + "; ".join(problems))
    _report(
        arguments,
        {"valid": True, "versions": versions, "problems": []},
        f"{arguments.spec}: {len(documents)} manifests valid for Kubernetes {', '.join(versions)} (strict)",
    )
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
    return run_local(spec, arguments.workdir, json_lines=_json(arguments))


def _connection(arguments: argparse.Namespace):
    from launcher.connection import connect

    return connect(
        arguments.kubeconfig,
        arguments.context,
        arguments.namespace,
        request_timeout=arguments.request_timeout,
    )


class _Watcher:
    """Shows a followed Job: its log lines (a live display on a terminal, the lines as they are otherwise) and
    each change of its state (on stderr, so stdout keeps the log and the result)."""

    def __init__(self, arguments: argparse.Namespace) -> None:
        from contract.display import LiveDisplay

        self.as_json = _json(arguments)
        self.display = LiveDisplay(sys.stdout) if sys.stdout.isatty() and not self.as_json else None

    def line(self, text: str) -> None:
        if self.display:
            self.display.text(text)
        elif self.as_json:
            print(json.dumps({"log": text}), flush=True)
        else:
            print(text, flush=True)

    def state(self, report: Any) -> None:
        if report.ended or report.stuck:
            return  # the outcome says it once
        if self.display:
            self.display.line(report.text())
        elif not self.as_json:
            print(report.text(), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.display:
            self.display.close()


def _outcome(arguments: argparse.Namespace, report: Any) -> int:
    """The final report, and its exit code: 0 succeeded, 1 failed, 6 stuck or stopped by the cluster."""
    code = 0 if report.phase == "Succeeded" else EXIT_STUCK if report.stuck else EXIT_JOB_FAILED
    if _json(arguments):
        print(json.dumps({**report.as_json(), "exit": code}), flush=True)
    elif code:
        why = " (stuck: it will not finish on its own)" if report.stuck else ""
        print(f"error: {report.text()}{why}", file=sys.stderr, flush=True)
    else:
        print(report.text(), flush=True)
    return code


def _follow(arguments: argparse.Namespace, connection, name: str) -> tuple[int, Any]:
    """Stream the logs (with --follow) and wait for the end, all within --timeout."""
    from launcher.cluster import wait
    from launcher.connection import Deadline
    from launcher.logs import Stopped, stream_logs

    deadline = Deadline(arguments.timeout)
    watcher = _Watcher(arguments)
    try:
        if getattr(arguments, "follow", False):
            try:
                for line in stream_logs(connection, name, True, deadline, watcher.state):
                    watcher.line(line)
            except Stopped as stopped:
                watcher.close()
                return _outcome(arguments, stopped.report), stopped.report
        report = wait(connection, name, deadline, watcher.state)
    finally:
        watcher.close()
    return _outcome(arguments, report), report


def _checked_manifests(spec: Any, where: str) -> list[dict]:
    """The spec's manifests, validated strictly (as `validate` does) before anything is sent."""
    from launcher.render import manifests

    documents = manifests(spec)
    problems = _strict_problems(documents, [KUBERNETES_VERSIONS[-1]])
    if problems:
        raise SpecError(f"{where}: " + "; ".join(problems))
    return documents


def _namespaced(arguments: argparse.Namespace, spec: Any, connection: Any, documents: list[dict]) -> str:
    """-n, else the spec's namespace, else the context's: set on the documents and the connection."""
    namespace = arguments.namespace or spec.namespace or connection.namespace
    for document in documents:
        document["metadata"]["namespace"] = namespace
    connection.namespace = namespace
    return namespace


def _command_submit(arguments: argparse.Namespace) -> int:
    return _submit(arguments, load_spec(arguments.spec, arguments.overrides))


def _command_predict(arguments: argparse.Namespace) -> int:
    from launcher.spec import as_predict_job

    options = {"images": arguments.images, "to": arguments.to, "top_k": arguments.top_k, "run": arguments.run}
    spec = load_spec(arguments.spec, arguments.overrides, lambda doc: as_predict_job(doc, options, arguments.name))
    if arguments.local:
        from launcher.local import run_local

        return run_local(spec, None, json_lines=_json(arguments))
    return _submit(arguments, spec)


def _submit(arguments: argparse.Namespace, spec: Any) -> int:
    """Create the spec's Job (strictly validated first), then follow it and gate it as the options ask."""
    from launcher.cluster import submit
    from launcher.gate import Requirement, check, preflight

    requirements = [Requirement.parse(text) for text in getattr(arguments, "require", [])]
    documents = _checked_manifests(spec, str(arguments.spec))
    if requirements:
        preflight(spec)
    connection = _connection(arguments)
    namespace = _namespaced(arguments, spec, connection, documents)
    created = submit(connection, documents, arguments.dry_run)
    verb = "validated by the server (dry run)" if arguments.dry_run else "created"
    message = f"{', '.join(created)} {verb} in {connection.where()}"
    if not (arguments.wait or arguments.follow or requirements) or arguments.dry_run:
        _report(arguments, {"created": created, "namespace": namespace, "dry_run": arguments.dry_run}, message)
        return 0
    print(message, file=sys.stderr, flush=True)
    code, _ = _follow(arguments, connection, spec.name)
    if code != 0 or not requirements:
        return code
    met = check(spec, requirements)
    _report(
        arguments,
        {"name": spec.name, "namespace": namespace, "quality_gate": "passed", "metrics": met},
        f"quality gate passed: {', '.join(f'{name}={value:g}' for name, value in met.items())}",
    )
    return 0


def _command_status(arguments: argparse.Namespace) -> int:
    from launcher.cluster import observe

    report = observe(_connection(arguments), arguments.name)
    code = EXIT_STUCK if report.stuck else EXIT_JOB_FAILED if report.phase == "Failed" else 0
    _report(arguments, {**report.as_json(), "exit": code}, report.text())
    return code


def _command_wait(arguments: argparse.Namespace) -> int:
    return _follow(arguments, _connection(arguments), arguments.name)[0]


def _command_logs(arguments: argparse.Namespace) -> int:
    from launcher.connection import Deadline
    from launcher.logs import Stopped, stream_logs

    watcher = _Watcher(arguments)
    connection = _connection(arguments)
    try:
        for line in stream_logs(
            connection, arguments.name, arguments.follow, Deadline(arguments.timeout), watcher.state
        ):
            watcher.line(line)
    except Stopped as stopped:
        return _outcome(arguments, stopped.report)
    finally:
        watcher.close()
    return 0


def _command_cancel(arguments: argparse.Namespace) -> int:
    from launcher.cluster import cancel

    connection = _connection(arguments)
    cancel(connection, arguments.name)
    _report(
        arguments,
        {"name": arguments.name, "namespace": connection.namespace, "cancelled": True},
        f"{arguments.name} (namespace {connection.namespace}): cancelled",
    )
    return 0


def _command_list(arguments: argparse.Namespace) -> int:
    from launcher.cluster import list_jobs

    connection = _connection(arguments)
    reports = list_jobs(connection)
    _report(
        arguments,
        {"namespace": connection.namespace, "jobs": [report.as_json() for report in reports]},
        "\n".join(f"{r.name:<40} {r.phase:<10} {r.created or '':<21} {r.line}" for r in reports)
        or f"no jobs in {connection.where()}",
    )
    return 0


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the in-cluster service account)"
    )
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("-n", "--namespace", help="namespace (default: the spec's, then the context's, then default)")
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="time limit of each API request (default 30)",
    )
    _output_argument(parser)


def _timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="one deadline for everything this command waits for (a pod to start, logs, the end); exit 4",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="launcher", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--debug", action="store_true", help="print the traceback of an unexpected error")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser("render", help="print the Kubernetes manifests of a spec (YAML, or JSON)")
    _spec_arguments(render)
    _output_argument(render)
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
    _output_argument(validate)
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
    _output_argument(run)
    run.set_defaults(handler=_command_run)

    submit = commands.add_parser("submit", help="create the Job in the cluster")
    _spec_arguments(submit)
    _cluster_arguments(submit)
    submit.add_argument("--dry-run", action="store_true", help="server-side dry run: validated, not created")
    submit.add_argument("--wait", action="store_true", help="follow the Job to its end; exit 0, 1 or 6")
    submit.add_argument("--follow", action="store_true", help="stream the logs, then wait")
    _timeout_argument(submit)
    submit.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="METRIC>=VALUE",
        help="quality gate on metrics.json's summary after success, e.g. top1>=0.9 (repeatable; "
        "implies --wait; checked before submitting; exit 5 when not met)",
    )
    submit.set_defaults(handler=_command_submit)

    predict = commands.add_parser(
        "predict",
        help="classify images with a finished run: the spec's Job with mode: predict (python -m job predict)",
    )
    _spec_arguments(predict, "the training job spec (its output is the run whose model predicts)")
    predict.add_argument("--images", help="images to classify: a folder or s3:// prefix (predict.images)")
    predict.add_argument("--to", help="where predictions.jsonl/.csv and summary.json go (predict.to)")
    predict.add_argument("--top-k", type=int, default=None, help="labels listed per image (predict.top_k)")
    predict.add_argument("--run", default=None, help="another finished run or a .mindir (default: the spec's output)")
    predict.add_argument("--name", default=None, help="the predict Job's name (default: <spec name>-predict)")
    predict.add_argument("--local", action="store_true", help="run it on this machine (as run --local does)")
    _cluster_arguments(predict)
    predict.add_argument("--dry-run", action="store_true", help="server-side dry run: validated, not created")
    predict.add_argument("--wait", action="store_true", help="follow the Job to its end; exit 0, 1 or 6")
    predict.add_argument("--follow", action="store_true", help="stream the logs, then wait")
    _timeout_argument(predict)
    predict.set_defaults(handler=_command_predict)

    for name, handler, text in (
        ("status", _command_status, "show a Job's phase, why, and its progress"),
        ("wait", _command_wait, "wait for a Job to end; exit 0, 1 or 6, 4 on timeout"),
        ("logs", _command_logs, "print a Job's logs"),
        ("cancel", _command_cancel, "delete a Job and its pods"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("name", help="Job name")
        _cluster_arguments(command)
        if name in ("wait", "logs"):
            _timeout_argument(command)
        if name == "logs":
            command.add_argument("-f", "--follow", action="store_true", help="keep streaming")
        command.set_defaults(handler=handler)

    listing = commands.add_parser("list", help="list the Jobs the launcher created, with their phases")
    _cluster_arguments(listing)
    listing.set_defaults(handler=_command_list)
    from launcher.sweep_cli import sweep_parsers

    sweep_parsers(commands)
    return root


def _error(arguments: argparse.Namespace, message: str, code: int) -> int:
    if _json(arguments):
        print(json.dumps({"error": message, "exit": code}), flush=True)
    else:
        print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry warnings are not the user's business
    from launcher.sweep_cli import sweep_status_argv

    arguments = parser().parse_args(sweep_status_argv(sys.argv[1:] if argv is None else argv))
    try:
        return arguments.handler(arguments)
    except LauncherError as exc:
        return _error(arguments, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _error(arguments, "interrupted", 130)
    except Exception as exc:  # a fault of the launcher itself: one line, the traceback on request
        if arguments.debug:
            traceback.print_exc()
        hint = "" if arguments.debug else "; rerun with --debug for the traceback"
        return _error(arguments, f"unexpected {type(exc).__name__}: {exc}{hint}", EXIT_INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
