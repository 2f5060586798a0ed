"""What the job, the launcher and the Helm chart agree on: the settings model, the container's layout and the
job's exit codes. Nothing here imports MindSpore, boto3 or the Kubernetes client."""
