"""A sweep's leaderboard: one row per trial from its metrics.json, with the settings that differ between trials,
ranked by a summary metric; as a table, as JSON, as a CSV and as a picture of every trial's validation top-1
per epoch."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.render import setting_text
from launcher.sweep import SORTABLE, describe_overrides

SHOWN = ("top1", "best_top1", "best_epoch", "seconds")  # summary values in the table
SAVED = ("top1", "top5", "best_top1", "best_epoch", "epochs", "seconds")  # and in the CSV and JSON
CSV_FILE = "leaderboard.csv"
PICTURE_FILE = "curves.png"


@dataclass(frozen=True)
class Entry:
    """One trial: its number, Job name, state (succeeded, failed, running, pending, missing), overrides, output
    location and metrics.json (None until it finished)."""

    number: int
    name: str
    state: str
    overrides: dict[str, Any]
    output: str
    metrics: dict | None = None

    def value(self, metric: str) -> float | None:
        found = ((self.metrics or {}).get("summary") or {}).get(metric)
        return found if isinstance(found, (int, float)) and not isinstance(found, bool) else None

    def curve(self) -> list[tuple[int, float]]:
        """(epoch, validation top-1) of every evaluated epoch in metrics.json's history."""
        points = []
        for record in (self.metrics or {}).get("history") or []:
            top1 = (record.get("eval") or {}).get("top1")
            if isinstance(record.get("epoch"), int) and isinstance(top1, (int, float)):
                points.append((record["epoch"], float(top1)))
        return points


def varying(entries: list[Entry]) -> list[str]:
    """The settings whose values differ between the trials (all of them when none do), in order."""
    keys = list(dict.fromkeys(key for entry in entries for key in entry.overrides))
    differing = [key for key in keys if len({repr(entry.overrides.get(key)) for entry in entries}) > 1]
    return differing or keys


def ranked(entries: list[Entry], metric: str) -> list[Entry]:
    """Best first by `metric` (higher is better, but for seconds); trials without it last, in trial order."""
    higher = SORTABLE[metric]
    ordered = sorted(entries, key=lambda entry: entry.number)
    scored = [(value, entry) for entry in ordered if (value := entry.value(metric)) is not None]
    scored.sort(key=lambda pair: -pair[0] if higher else pair[0])  # stable: ties stay in trial order
    return [entry for _, entry in scored] + [entry for entry in ordered if entry.value(metric) is None]


def best(entries: list[Entry], metric: str) -> Entry | None:
    """The best succeeded trial by `metric`."""
    return next((e for e in ranked(entries, metric) if e.state == "succeeded" and e.value(metric) is not None), None)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return setting_text(value)


def _cells(entry: Entry, keys: list[str], values: tuple[str, ...]) -> list[str]:
    return [
        entry.name,
        entry.state,
        *(_text(entry.overrides.get(key)) for key in keys),
        *(_text(entry.value(value)) for value in values),
    ]


def table(entries: list[Entry], keys: list[str]) -> str:
    """The ranked entries as aligned columns."""
    rows = [["trial", "job", "state", *keys, *SHOWN]]
    rows += [[f"{entry.number:02d}", *_cells(entry, keys, SHOWN)] for entry in entries]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def as_json(entries: list[Entry]) -> list[dict]:
    return [
        {
            "trial": entry.number,
            "name": entry.name,
            "state": entry.state,
            "overrides": entry.overrides,
            "output": entry.output,
            **{metric: entry.value(metric) for metric in SAVED},
        }
        for entry in entries
    ]


def write_csv(entries: list[Entry], keys: list[str], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["trial", "job", "state", *keys, *SAVED, "output"])
        for entry in entries:
            cells = _cells(entry, keys, SAVED)
            writer.writerow([entry.number, *("" if cell == "-" else cell for cell in cells), entry.output])


def draw_curves(entries: list[Entry], keys: list[str], path: Path) -> bool:
    """Validation top-1 per epoch, one line per trial labelled with its settings; False (and a note on stderr)
    when matplotlib is not installed (it comes with the job's extra, not with the launcher)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        print(f"note: matplotlib is not installed, so no {path.name}; pip install matplotlib", file=sys.stderr)
        return False
    figure, axes = pyplot.subplots(figsize=(8, 5))
    for entry in entries:
        points = entry.curve()
        if points:
            label = describe_overrides({key: entry.overrides[key] for key in keys if key in entry.overrides})
            axes.plot(*zip(*points), marker="o", label=f"{entry.number:02d}: {label}")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation top-1")
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True


def write(entries: list[Entry], keys: list[str], directory: Path) -> list[Path]:
    """leaderboard.csv and curves.png in `directory`; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    write_csv(entries, keys, directory / CSV_FILE)
    written = [directory / CSV_FILE]
    if draw_curves(entries, keys, directory / PICTURE_FILE):
        written.append(directory / PICTURE_FILE)
    return written
