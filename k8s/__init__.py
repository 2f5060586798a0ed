"""Jinja2 templates of the Kubernetes manifests (installed as launcher.templates)."""
