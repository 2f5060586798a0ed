"""Offline, strict validation of rendered manifests against the Kubernetes OpenAPI schemas."""

from __future__ import annotations


def validate_manifests(documents: list[dict], versions: list[str]) -> list[str]:
    """Every schema violation, as `Kind/name (Kubernetes X): message`; empty when all are valid."""
    import kubernetes_validate

    problems = []
    for version in versions:
        for document in documents:
            where = f"{document.get('kind')}/{document.get('metadata', {}).get('name')} (Kubernetes {version})"
            try:
                kubernetes_validate.validate(document, f"{version}.0", strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(part) for part in exc.path)
                problems.append(f"{where}: {path}: {exc.message}")
    return problems
