"""results/report.html: the numbers it derives, that nothing a user typed can break out of its markup, and a real
run's page in headless Chromium (no console errors, no requests, every picture drawn, a screenshot taken)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import visit
from conftest import Reference
from job.report_page import Misclassified, per_class_rows, render_report, worst_misclassified, write_report

HOSTILE = '"><script>alert(1)</script><img src="http://127.0.0.1:9/x.png">'


def test_per_class_precision_recall_and_f1():
    confusion = [[8, 2, 0], [1, 9, 0], [0, 0, 0]]  # rows: true class; the third class has no images
    rows = per_class_rows(confusion, ["a", "b", "c"])
    assert [row["support"] for row in rows] == [10, 10, 0]
    assert rows[0]["precision"] == pytest.approx(8 / 9) and rows[0]["recall"] == pytest.approx(0.8)
    assert rows[0]["f1"] == pytest.approx(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8))
    assert rows[1]["precision"] == pytest.approx(9 / 11) and rows[1]["recall"] == pytest.approx(0.9)
    assert rows[2] == {"class": "c", "support": 0, "precision": None, "recall": None, "f1": None}


def test_the_gallery_shows_the_surest_mistakes_first():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.3, 0.7]])
    labels = np.array([0, 0, 1, 1, 0])  # wrong: images 1 (0.8 sure), 2 (0.6) and 4 (0.7)
    paths = [Path(f"/data/{i}.png") for i in range(5)]
    worst = worst_misclassified(paths, probabilities, labels, ["cat", "dog"], limit=2)
    assert worst == [
        Misclassified(paths[1], "cat", "dog", 0.8, 0.2),
        Misclassified(paths[4], "cat", "dog", 0.7, 0.3),
    ]
    assert worst_misclassified(paths, probabilities, probabilities.argmax(axis=1), ["cat", "dog"]) == []
    with pytest.raises(ValueError, match="4 image paths for 5 evaluated images"):
        worst_misclassified(paths[:4], probabilities, labels, ["cat", "dog"])


def _document(classes: list[str], settings: dict) -> dict:
    confusion = [[3, 1], [0, 4]]
    return {
        "summary": {"epochs": 2, "seconds": 12.5, "metrics": "/out/metrics.json"},
        "exported": {
            "epoch": 2,
            "metrics": {"top1": 0.875, "top5": 1.0, "loss": 0.3, "images": 8, "confusion_matrix": confusion},
        },
        "classes": classes,
        "settings": settings,
        "data": {"FT_EVAL_DATA": {"location": HOSTILE, "fingerprint": "ab" * 32, "images": 8}},
    }


def test_nothing_a_user_typed_becomes_markup(tmp_path):
    image = tmp_path / "x.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(image)
    document = _document([HOSTILE, "plain"], {"model": HOSTILE, "train_data": HOSTILE})
    page = render_report(document, {}, [Misclassified(image, HOSTILE, "plain", 0.9, 0.1)])
    assert "<script" not in page and 'src="http://' not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # title, cards, tables and the gallery alike
    assert re.search(r"<img [^>]*src=\"data:image/jpeg;base64,", page)  # the thumbnail is embedded


def test_a_request_from_a_page_is_caught(tmp_path):
    """The browser check can fail: a page that fetches something or throws is reported as doing so."""
    page = tmp_path / "leaky.html"
    page.write_text('<img src="http://127.0.0.1:9/x.png"><script>missing()</script>', encoding="utf-8")
    seen = visit(page, tmp_path / "leaky.png")
    assert seen.requests == ["http://127.0.0.1:9/x.png"] and seen.broken_images == 1
    assert seen.errors and "missing is not defined" in seen.errors[0]


@pytest.mark.slow  # the report page of a real run
def test_a_runs_report_renders_in_chromium_with_no_errors_and_no_requests(uninterrupted: Reference, tmp_path):
    metrics = uninterrupted.metrics
    output = Path(metrics["summary"]["metrics"]).parent
    page = output / metrics["artefacts"]["report"]
    screenshot = tmp_path / "report.png"
    seen = visit(page, screenshot)
    assert seen.console == [] and seen.errors == [] and seen.requests == [] and seen.broken_images == 0
    assert seen.title == f"Fine-tuning report: {metrics['settings']['model']}"
    for heading in ("Training", "Confusion matrix (exported epoch)", "Per class", "Most confident mistakes", "Data"):
        assert heading in seen.text
    for name in metrics["classes"]:
        assert name in seen.text
    assert metrics["data"]["FT_TRAIN_DATA"]["fingerprint"] in seen.text
    assert f"{metrics['exported']['metrics']['top1']:.3f}" in seen.text
    with Image.open(screenshot) as shot:
        assert shot.width == 1280 and shot.height > 900  # the whole page, longer than one screen
        assert len(shot.convert("L").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50  # drawn, not blank


def test_the_page_is_written_where_asked(tmp_path):
    path = write_report(tmp_path / "results" / "report.html", _document(["a", "b"], {"model": "m"}), {}, [])
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "Every evaluation image was classified correctly." in path.read_text(encoding="utf-8")
