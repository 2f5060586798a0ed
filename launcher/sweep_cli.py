"""`launcher sweep SPEC ...` and `launcher sweep status NAME`: the commands, their flags and their output."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

from launcher.cli import (
    _checked_manifests,
    _cluster_arguments,
    _connection,
    _json,
    _namespaced,
    _report,
    _spec_arguments,
    _timeout_argument,
)
from launcher.errors import EXIT_JOB_FAILED, EXIT_STUCK, LauncherError


SWEEP_HELP = """Run every trial of a hyperparameter sweep as an ordinary job: `launcher sweep SPEC --grid KEY=V1,V2`
(the cartesian product, the first --grid varying slowest) or `--random N --range KEY=LOW:HIGH[:log]` (N draws,
reproducible with --seed), over the spec's settings; SPEC may also be a sweep file (YAML with `spec:`).
Trial NN is the Job <name>-tNN writing to <output>/trials/NN; a restart follows the Jobs that exist and skips
trials whose output holds a finished metrics.json. At the end: the leaderboard (stdout) and
<name>-sweep/leaderboard.csv and curves.png. `launcher sweep status NAME` shows the leaderboard of a sweep.

Exit codes: 0 every trial succeeded (and the best one meets --require); 1 a trial failed; 2 bad input (nothing
is submitted) or the sweep id is taken by a different sweep; 3 the API or the output store refused or cannot
be reached; 4 --timeout passed (one deadline for the whole sweep); 5 the best trial misses a --require bar;
6 a trial is stuck (no further trial is started).
"""
SWEEP_STATUS = "sweep-status"  # `launcher sweep status NAME`, rewritten by main()


def _note(arguments: argparse.Namespace, text: str) -> None:
    if not _json(arguments):
        print(text, file=sys.stderr, flush=True)


def _show_leaderboard(
    arguments: argparse.Namespace, name: str, entries: list, sort: str, code: int, extra: dict | None = None
) -> None:
    """The ranked table (or JSON) on stdout; leaderboard.csv and curves.png in --to (default ./<name>-sweep)."""
    from launcher import leaderboard

    ranked = leaderboard.ranked(entries, sort)
    keys = leaderboard.varying(ranked)
    written = leaderboard.write(ranked, keys, arguments.to or Path(f"{name}-sweep"))
    top = leaderboard.best(ranked, sort)
    _report(
        arguments,
        {
            "sweep": name,
            "sort": sort,
            "settings": keys,
            "trials": leaderboard.as_json(ranked),
            "best": top.name if top else None,
            "written": [str(path) for path in written],
            **(extra or {}),
            "exit": code,
        },
        f"sweep {name}: {len(ranked)} trials, ranked by {sort}\n{leaderboard.table(ranked, keys)}",
    )
    _note(arguments, f"wrote {', '.join(map(str, written))}")


def _sweep_gate(sweep: Any, entries: list) -> tuple[dict | None, LauncherError | None]:
    """The --require bars checked on the best trial's metrics.json: what it met, or why not (exit 5)."""
    from launcher import leaderboard
    from launcher.gate import BelowBar, check

    top = leaderboard.best(entries, sweep.sort)
    if top is None:
        return None, BelowBar(f"no trial of sweep {sweep.name} left a {sweep.sort} in its metrics.json to gate on")
    trial = sweep.trials[top.number - 1]
    try:
        return {"trial": trial.name, "passed": True, "metrics": check(trial.spec, sweep.requirements)}, None
    except BelowBar as exc:
        return None, BelowBar(f"the best trial {trial.name} ({trial.describe()}): {exc}")


def _command_sweep(arguments: argparse.Namespace) -> int:
    from launcher.gate import preflight
    from launcher.local import require_one_pod
    from launcher.sweep import Request, plan
    from launcher.sweep_run import ClusterSweep, run_here
    from launcher.sweep_status import outcome_entries

    sweep = plan(
        Request(
            arguments.spec,
            arguments.overrides,
            arguments.grid,
            arguments.ranges,
            arguments.random,
            arguments.seed,
            arguments.name,
            arguments.parallel,
            arguments.require,
            arguments.sort,
        )
    )
    if arguments.dry_run:
        rows = [f"{'trial':<6}{'job':<{len(sweep.name) + 6}}overrides -> output"]
        rows += [f"{t.label:<6}{t.name:<{len(sweep.name) + 6}}{t.describe()} -> {t.output}" for t in sweep.trials]
        trials = [
            {"trial": t.number, "name": t.name, "overrides": t.overrides, "output": t.output} for t in sweep.trials
        ]
        _report(arguments, {"sweep": sweep.name, "parallel": sweep.parallel, "trials": trials}, "\n".join(rows))
        return 0
    documents: dict[int, list[dict]] = {}
    for trial in sweep.trials:  # every trial checked before any runs
        if arguments.local:
            require_one_pod(trial.spec)
        else:
            documents[trial.number] = _checked_manifests(trial.spec, f"{arguments.spec}, trial {trial.label}")
    if sweep.requirements:
        preflight(sweep.trials[0].spec)
    note = functools.partial(_note, arguments)
    if arguments.local:
        if sweep.parallel > 1:
            note("note: --local runs the trials one after another; --parallel is for the cluster")
        outcomes = run_here(sweep, _json(arguments), note)
    else:
        connection = _connection(arguments)
        for trial_documents in documents.values():
            _namespaced(arguments, sweep.trials[0].spec, connection, trial_documents)
        follow = ClusterSweep(sweep, documents, connection, arguments.timeout, lambda report: note(report.text()), note)
        outcomes = follow.run()
    entries = outcome_entries(outcomes)
    failed = [o.trial.name for o in outcomes if o.state != "succeeded"]
    stuck = [o.trial.name for o in outcomes if o.stuck]
    code, gate, message = 0, None, None
    if failed:
        code = EXIT_STUCK if stuck else EXIT_JOB_FAILED
        message = f"{len(failed)} of {len(outcomes)} trials did not succeed: {', '.join(failed)}"
        message += f" ({', '.join(stuck)} stuck)" if stuck else ""
    elif sweep.requirements:
        gate, failure = _sweep_gate(sweep, entries)
        if failure:
            code, message = failure.exit_code, str(failure)
    _show_leaderboard(
        arguments,
        sweep.name,
        entries,
        sweep.sort,
        code,
        {"quality_gate": gate, **({"error": message} if message else {})},
    )
    if message and not _json(arguments):
        print(f"error: {message}", file=sys.stderr, flush=True)
    elif gate and not _json(arguments):
        met = ", ".join(f"{metric}={value:g}" for metric, value in gate["metrics"].items())
        print(f"quality gate passed on the best trial {gate['trial']}: {met}", flush=True)
    return code


def _command_sweep_status(arguments: argparse.Namespace) -> int:
    from launcher.sweep_status import cluster_entries, local_entries

    name = arguments.name
    entries = local_entries(name) if arguments.local else cluster_entries(_connection(arguments), name)
    _show_leaderboard(arguments, name, entries, arguments.sort, 0)
    return 0


def sweep_status_argv(argv: list[str]) -> list[str]:
    """`launcher sweep status NAME ...` as the sweep-status command (so `launcher sweep SPEC` keeps its
    positional SPEC; a spec file called status is `./status`)."""
    index = next((i for i, item in enumerate(argv) if not item.startswith("-")), None)
    if index is not None and argv[index : index + 2] == ["sweep", "status"]:
        return [*argv[:index], SWEEP_STATUS, *argv[index + 2 :]]
    return argv


def sweep_parsers(commands: Any) -> None:
    from launcher.sweep import DEFAULT_SORT, SORTABLE

    sweep = commands.add_parser(
        "sweep",
        help="run a hyperparameter sweep of a spec's settings (launcher sweep status NAME: its leaderboard)",
        description=SWEEP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _spec_arguments(sweep, "job spec, or sweep file (YAML whose spec: names the job spec)")
    sweep.add_argument(
        "--grid", action="append", default=[], metavar="KEY=V1,V2,...", help="a setting's values (repeatable)"
    )
    sweep.add_argument("--random", type=int, metavar="N", help="N trials drawn from the --range ranges")
    sweep.add_argument(
        "--range",
        dest="ranges",
        action="append",
        default=[],
        metavar="KEY=LOW:HIGH[:log]",
        help="a numeric setting's range, uniform or log-uniform (repeatable; with --random)",
    )
    sweep.add_argument("--seed", type=int, help="seed of the random draws (default 0)")
    sweep.add_argument("--name", help="sweep id, at most 48 characters (default: the spec's name)")
    sweep.add_argument("--parallel", type=int, metavar="K", help="trial Jobs running at once (default 1)")
    sweep.add_argument("--dry-run", action="store_true", help="print the trials; nothing is run or submitted")
    sweep.add_argument("--local", action="store_true", help="run the trials on this machine, one after another")
    sweep.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="METRIC>=VALUE",
        help="quality gate on the best trial's metrics.json once every trial ended (repeatable; exit 5)",
    )
    sweep.add_argument("--sort", choices=sorted(SORTABLE), help=f"rank the trials by (default {DEFAULT_SORT})")
    _sweep_output_arguments(sweep)
    _cluster_arguments(sweep)
    _timeout_argument(sweep)
    sweep.set_defaults(handler=_command_sweep)

    status = commands.add_parser(
        SWEEP_STATUS,
        prog="launcher sweep status",
        description="The leaderboard of a sweep: each trial's state, the settings that differ and its metrics.json "
        "summary, ranked; also written as leaderboard.csv and curves.png.",
    )
    status.add_argument("name", help="sweep id")
    status.add_argument("--local", action="store_true", help="a sweep run here (.launcher/sweeps/NAME.json)")
    status.add_argument("--sort", choices=sorted(SORTABLE), default=DEFAULT_SORT, help="rank the trials by")
    _sweep_output_arguments(status)
    _cluster_arguments(status)
    status.set_defaults(handler=_command_sweep_status)


def _sweep_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to", type=Path, metavar="DIR", help="where leaderboard.csv and curves.png go (default ./NAME-sweep)"
    )
