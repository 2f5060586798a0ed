"""Batch prediction with a finished run's model (`python -m job predict`): images in any layout, local or s3://,
classified with the job's own evaluation transform; predictions.jsonl, predictions.csv and summary.json."""
