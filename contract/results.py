"""What a finished run leaves in its output: metrics.json, whose summary the quality gate reads."""

from __future__ import annotations

METRICS_FILE = "metrics.json"
# The numbers in metrics.json's "summary" (and in the job's last output line), the names `--require` accepts.
SUMMARY_METRICS = {
    "top1": "top-1 accuracy of the final model on the evaluation images",
    "top5": "top-5 accuracy of the final model",
    "best_top1": "the best epoch's top-1 accuracy",
    "best_epoch": "the epoch with the best top-1",
    "epochs": "epochs trained",
    "seconds": "wall time of the run",
}
