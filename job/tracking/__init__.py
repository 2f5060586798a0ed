"""Experiment tracking: TensorBoard event files and MLflow runs fed from the job's progress events."""
