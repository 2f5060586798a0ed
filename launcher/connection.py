"""A connection to the Kubernetes API: the kubeconfig (or in-cluster service account) checked with messages a
person can act on, the namespace, a time limit on every request, and refusals reported with the server's
own message."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from launcher.errors import ApiRefused, SpecError, TimedOut

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REQUEST_TIMEOUT_SECONDS = 30.0  # any single API request; a server that never answers ends in exit 3
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass
class Deadline:
    """One time limit for everything a command waits for (a pod to start, logs, the Job's end)."""

    seconds: float | None
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float | None:
        return None if self.seconds is None else self.seconds - (time.monotonic() - self.started)

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def check(self, what: str) -> None:
        """Raise TimedOut, naming what was last seen, once the time is up."""
        if self.expired():
            raise TimedOut(f"timed out after {self.seconds:g} s; last seen: {what}")

    def cap(self, seconds: float) -> float:
        """`seconds`, or less when the deadline comes sooner (never below a tenth of a second)."""
        remaining = self.remaining()
        return seconds if remaining is None else max(0.1, min(seconds, remaining))


@dataclass
class Connection:
    """An API client, the namespace commands act in, and the time limit of each request."""

    api: Any  # kubernetes.client.ApiClient
    namespace: str
    request_timeout: float = REQUEST_TIMEOUT_SECONDS
    context: str | None = None

    def where(self) -> str:
        return f"namespace {self.namespace}" + (f" (context {self.context})" if self.context else "")

    def call(self, action: Callable, *args: Any, read_timeout: float | None = None, **kwargs: Any) -> Any:
        """`action(*args, **kwargs)` with a request timeout; refusals and unreachable servers as ApiRefused."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        read = self.request_timeout if read_timeout is None else read_timeout
        kwargs.setdefault("_request_timeout", (min(CONNECT_TIMEOUT_SECONDS, self.request_timeout), read))
        try:
            return action(*args, **kwargs)
        except ApiException as exc:
            raise refused(exc, self) from exc
        except HTTPError as exc:
            raise ApiRefused(
                f"the API server {self.api.configuration.host} did not answer ({_reason(exc)}); check the "
                f"kubeconfig, the network, or raise --request-timeout (now {self.request_timeout:g} s)"
            ) from exc

    def as_dict(self, item: Any) -> dict:
        return self.api.sanitize_for_serialization(item)


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)


def refused(exc: Any, connection: Connection | None = None) -> SpecError | ApiRefused:
    """The server's own message for a refused request; unknown fields (strict field validation) are the
    spec's fault (exit 2), expired or wrong credentials say so."""
    try:
        message = json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        message = exc.reason
    where = f" in {connection.where()}" if connection else ""
    if exc.status == 400 and ("unknown field" in message or "strict decoding error" in message):
        return SpecError(f"the API server refused an unknown field{where} (strict field validation): {message}")
    if exc.status == 401:
        return ApiRefused(
            f"the API server refused the credentials (401 Unauthorized): {message}; the kubeconfig's token or "
            f"certificate may have expired: log in again"
        )
    return ApiRefused(f"the API refused the request{where} ({exc.status} {exc.reason}): {message}")


def _kubeconfig_files(kubeconfig: str | None) -> list[Path]:
    names = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"  # may list several, ':'-separated
    return [Path(name).expanduser() for name in names.split(os.pathsep) if name]


def check_kubeconfig(path: Path) -> dict:
    """A kubeconfig file read and checked for its shape, with one-line reasons when it cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"kubeconfig {path} cannot be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"kubeconfig {path} is not text (a binary file?); point --kubeconfig at a kubeconfig") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"kubeconfig {path} is not valid YAML{at}: {problem}") from None
    if not isinstance(document, dict):
        raise SpecError(
            f"kubeconfig {path} is not a kubeconfig (a {type(document).__name__}, not a mapping with clusters, "
            f"users and contexts)"
        )
    for key in ("clusters", "contexts"):
        if not isinstance(document.get(key) or [], list):
            raise SpecError(f"kubeconfig {path}: {key} must be a list")
    return document


def _context_names(documents: list[dict]) -> list[str]:
    return [item.get("name") for document in documents for item in document.get("contexts") or [] if item]


def connect(
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Connection:
    """Kubeconfig (--kubeconfig, then KUBECONFIG, then ~/.kube/config) or, inside a pod, in-cluster config."""
    from kubernetes import client, config

    files = _kubeconfig_files(kubeconfig)
    existing = [path for path in files if path.exists()]
    if kubeconfig and not existing:
        raise SpecError(f"kubeconfig {kubeconfig} does not exist; pass --kubeconfig PATH or set KUBECONFIG")
    if not existing and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return _in_cluster(namespace, service_account_dir, request_timeout)
    if not existing:
        raise SpecError(f"no kubeconfig found ({', '.join(map(str, files))}); pass --kubeconfig PATH or set KUBECONFIG")
    documents = [check_kubeconfig(path) for path in existing]
    names = _context_names(documents)
    if context and context not in names:
        raise SpecError(f"context {context!r} is not in the kubeconfig (it has: {', '.join(names) or 'none'})")
    joined = os.pathsep.join(map(str, existing))
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=joined, context=context, client_configuration=configuration)
        contexts, active = config.list_kube_config_contexts(config_file=joined)
    except config.ConfigException as exc:
        raise SpecError(f"kubeconfig {joined} cannot be used: {str(exc).splitlines()[0]}") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SpecError(f"kubeconfig {joined} cannot be used ({type(exc).__name__}: {exc})") from None
    current = next((c for c in contexts if c["name"] == context), active) if context else active
    chosen = (current or {}).get("context") or {}
    return Connection(
        _client(configuration),
        namespace or chosen.get("namespace") or "default",
        request_timeout,
        (current or {}).get("name"),
    )


def _client(configuration: Any) -> Any:
    """An API client whose requests are not retried after a read timeout (the request timeout is the limit)."""
    from kubernetes import client
    from urllib3.util.retry import Retry

    configuration.retries = Retry(total=2, read=0, status=0, redirect=0)
    return client.ApiClient(configuration)


def _in_cluster(namespace: str | None, service_account_dir: Path, request_timeout: float) -> Connection:
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.incluster_config.InClusterConfigLoader(
            token_filename=str(service_account_dir / "token"), cert_filename=str(service_account_dir / "ca.crt")
        ).load_and_set(configuration)
    except (config.ConfigException, OSError) as exc:
        raise SpecError(
            f"in-cluster configuration cannot be used ({exc}); pass --kubeconfig or set KUBECONFIG"
        ) from None
    own = service_account_dir / "namespace"
    return Connection(
        _client(configuration),
        namespace or (own.read_text().strip() if own.exists() else "default"),
        request_timeout,
    )
