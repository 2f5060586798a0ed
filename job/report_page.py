"""results/report.html: one self-contained page (no scripts, no external requests) with what a person wants to see
after a run: the curves, the exported epoch's confusion matrix and per-class table, the worst mistakes as
thumbnails, the settings and the data fingerprints. Every value shown is HTML-escaped."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
from PIL import Image

THUMBNAIL_PIXELS = 112
GALLERY_LIMIT = 24
# Nothing may be fetched: images are data: URIs, the style is inline, there is no script.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1d2430; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #d8dde6; }
.lead { color: #4a5568; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; }
.card { background: #f3f6fa; border-radius: 8px; padding: .7rem 1rem; min-width: 9rem; }
.card b { display: block; font-size: 1.35rem; }
table { border-collapse: collapse; margin: .6rem 0; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e5e9f0; text-align: left; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
table.confusion td { text-align: center; min-width: 2.2rem; border: 1px solid #fff; }
table.confusion th.corner { font-weight: normal; color: #4a5568; }
img.figure { max-width: 100%; border: 1px solid #e5e9f0; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr)); gap: .8rem; }
.gallery figure { margin: 0; background: #f3f6fa; border-radius: 8px; padding: .5rem; }
.gallery img { width: 100%; height: auto; image-rendering: auto; border-radius: 4px; }
.gallery figcaption { font-size: .82rem; word-break: break-all; }
.wrong { color: #b42318; font-weight: 600; }
code { font-size: .85rem; word-break: break-all; }
"""


@dataclass(frozen=True)
class Misclassified:
    """One evaluation image the model got wrong: its file, true and predicted class, and the probabilities the
    model gave its prediction and the truth."""

    path: Path
    label: str
    predicted: str
    confidence: float
    true_probability: float


def worst_misclassified(
    paths: list[Path], probabilities: np.ndarray, labels: np.ndarray, classes: list[str], limit: int = GALLERY_LIMIT
) -> list[Misclassified]:
    """The wrong predictions the model was surest of, surest first (at most `limit`). `paths`, `probabilities`
    (N, classes) and `labels` are in the same (evaluation) order."""
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} image paths for {len(labels)} evaluated images")
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    surest = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:limit]
    return [
        Misclassified(
            paths[i],
            classes[labels[i]],
            classes[predicted[i]],
            float(probabilities[i, predicted[i]]),
            float(probabilities[i, labels[i]]),
        )
        for i in surest
    ]


def _data_uri(media_type: str, content: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(content).decode('ascii')}"


def _thumbnail(path: Path) -> str | None:
    """A JPEG thumbnail of the image as a data: URI, or None when it cannot be read."""
    try:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
        picture.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
        if max(picture.size) < THUMBNAIL_PIXELS:  # small images (the digits are 32x32) are shown enlarged
            scale = THUMBNAIL_PIXELS / max(picture.size)
            size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            picture = picture.resize(size, Image.Resampling.NEAREST)
        encoded = io.BytesIO()
        picture.save(encoded, format="JPEG", quality=85)
    except (OSError, ValueError):
        return None
    return _data_uri("image/jpeg", encoded.getvalue())


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], numbers: frozenset[int] = frozenset(), css: str = "") -> str:
    """A table of already-escaped cells; columns in `numbers` are right-aligned."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=number' if i in numbers else ''}>{cell}</td>" for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table{f' class={css}' if css else ''}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def per_class_rows(confusion: list[list[int]], classes: list[str]) -> list[dict]:
    """Each class's support, precision, recall (its accuracy) and F1 from a confusion matrix (rows: true)."""
    matrix = np.asarray(confusion, dtype=np.int64).reshape(len(classes), len(classes))
    rows = []
    for i, name in enumerate(classes):
        support, claimed, hits = int(matrix[i].sum()), int(matrix[:, i].sum()), int(matrix[i, i])
        precision = hits / claimed if claimed else None
        recall = hits / support if support else None
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
        rows.append({"class": name, "support": support, "precision": precision, "recall": recall, "f1": f1})
    return rows


def _confusion_table(confusion: list[list[int]], classes: list[str]) -> str:
    """The confusion matrix as a heat map: each cell shaded by its share of the true class's images."""
    header = '<th class="corner">true \\ predicted</th>' + "".join(f"<th>{escape(name)}</th>" for name in classes)
    body = []
    for row, (name, counts) in enumerate(zip(classes, confusion)):
        total = sum(counts) or 1
        cells = []
        for column, count in enumerate(counts):
            share = count / total
            colour = f"rgba(37, 99, 235, {share:.3f})" if column == row else f"rgba(220, 38, 38, {share:.3f})"
            ink = "#fff" if share > 0.55 else "#1d2430"
            cells.append(f'<td style="background:{colour};color:{ink}" title="{share:.1%}">{count}</td>')
        body.append(f"<tr><th>{escape(name)}</th>{''.join(cells)}</tr>")
    return f'<table class="confusion"><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _gallery(gallery: list[Misclassified]) -> str:
    if not gallery:
        return "<p>Every evaluation image was classified correctly.</p>"
    figures = []
    for miss in gallery:
        thumbnail = _thumbnail(miss.path)
        picture = (
            f'<img src="{thumbnail}" alt="{escape(miss.path.name)}">' if thumbnail else "<p>(image unreadable)</p>"
        )
        figures.append(
            f"<figure>{picture}<figcaption>"
            f'<span class="wrong">{escape(miss.predicted)}</span> {miss.confidence:.0%}<br>'
            f"true: {escape(miss.label)} ({miss.true_probability:.0%})<br>"
            f"<code>{escape(miss.path.name)}</code></figcaption></figure>"
        )
    return f'<div class="gallery">{"".join(figures)}</div>'


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "–" if value is None or value == "" else str(value)


def render_report(document: dict, figures: dict[str, Path], gallery: list[Misclassified]) -> str:
    """The page for one run's metrics.json `document`, its figure PNGs (label -> path; missing ones are left
    out) and the worst-misclassified images."""
    summary, exported, classes = document["summary"], document["exported"], document["classes"]
    metrics = exported["metrics"]
    model = escape(str(document["settings"].get("model", "")))
    cards = [
        ("exported epoch", str(exported["epoch"])),
        ("eval top-1", _number(metrics["top1"])),
        ("eval top-5", _number(metrics["top5"])),
        ("eval loss", _number(metrics["loss"])),
        ("eval images", str(metrics["images"])),
        ("epochs trained", str(summary.get("epochs"))),
        ("seconds", _value(summary.get("seconds"))),
    ]
    pictures = "".join(
        f'<h3>{escape(label.replace("_", " "))}</h3><img class="figure" alt="{escape(label)}" '
        f'src="{_data_uri("image/png", path.read_bytes())}">'
        for label, path in figures.items()
        if path.is_file()
    )
    per_class = _table(
        ["class", "images", "precision", "recall (accuracy)", "F1"],
        [
            [
                escape(row["class"]),
                str(row["support"]),
                _number(row["precision"]),
                _number(row["recall"]),
                _number(row["f1"]),
            ]
            for row in per_class_rows(metrics["confusion_matrix"], classes)
        ],
        numbers=frozenset({1, 2, 3, 4}),
    )
    data = _table(
        ["variable", "location", "images", "fingerprint (sha256)"],
        [
            [
                escape(name),
                f"<code>{escape(str(found['location']))}</code>",
                str(found["images"]),
                f"<code>{escape(str(found['fingerprint']))}</code>",
            ]
            for name, found in document.get("data", {}).items()
        ],
        numbers=frozenset({2}),
    )
    settings = _table(
        ["setting", "value"],
        [
            [escape(name), f"<code>{escape(_value(value))}</code>"]
            for name, value in sorted(document["settings"].items())
        ],
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fine-tuning report: {model}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Fine-tuning report: {model}</h1>
<p class="lead">{len(classes)} classes · the exported model is epoch {exported["epoch"]}, the best evaluated one ·
metrics: <code>{escape(str(summary.get("metrics", "")))}</code></p>
<div class="cards">{"".join(f"<div class=card>{escape(n)}<b>{escape(v)}</b></div>" for n, v in cards)}</div>
<h2>Training</h2>
{pictures}
<h2>Confusion matrix (exported epoch)</h2>
{_confusion_table(metrics["confusion_matrix"], classes)}
<h2>Per class</h2>
{per_class}
<h2>Most confident mistakes</h2>
{_gallery(gallery)}
<h2>Data</h2>
{data}
<h2>Settings</h2>
{settings}
</body>
</html>
"""


def write_report(path: Path, document: dict, figures: dict[str, Path], gallery: list[Misclassified]) -> Path:
    """Write the report page to `path`; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(document, figures, gallery), encoding="utf-8")
    return path
