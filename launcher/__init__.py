"""The `launcher` command: job specs rendered into Kubernetes manifests and run through the Kubernetes API.

Never imports MindSpore; it shares only the job's settings contract (`job.config`).
"""
