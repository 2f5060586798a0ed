"""The Kubernetes API through the official client: submit, status, wait, logs, cancel, list.

Watches survive dropped connections and `410 Gone`; log streams reconnect without repeating lines and decode
UTF-8 split across chunks.
"""

from __future__ import annotations

import codecs
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

from launcher.errors import ApiRefused, SpecError, TimedOut

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MANAGED = "app.kubernetes.io/managed-by=launcher"
RECONNECT_SECONDS = 1.0
WATCH_SECONDS = 300


@dataclass
class Connection:
    """An API client and the namespace commands act in."""

    api: Any  # kubernetes.client.ApiClient
    namespace: str


def connect(
    kubeconfig: str | None, context: str | None, namespace: str | None, service_account_dir: Path = SERVICE_ACCOUNT_DIR
) -> Connection:
    """Kubeconfig (--kubeconfig, then KUBECONFIG, then ~/.kube/config) or, inside a pod, in-cluster config."""
    from kubernetes import client, config

    files = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"  # may list several, ':'-separated
    exists = any(Path(name).expanduser().exists() for name in files.split(os.pathsep))
    try:
        if kubeconfig or exists or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            api = config.new_client_from_config(config_file=files, context=context)
            contexts, active = config.list_kube_config_contexts(config_file=files)
            current = next((c for c in contexts if c["name"] == context), active) if context else active
            return Connection(api, namespace or current.get("context", {}).get("namespace") or "default")
        configuration = client.Configuration()
        config.incluster_config.InClusterConfigLoader(
            token_filename=str(service_account_dir / "token"), cert_filename=str(service_account_dir / "ca.crt")
        ).load_and_set(configuration)
        own = service_account_dir / "namespace"
        return Connection(
            client.ApiClient(configuration), namespace or (own.read_text().strip() if own.exists() else "default")
        )
    except (config.ConfigException, OSError) as exc:
        raise SpecError(f"no usable cluster configuration ({exc}); pass --kubeconfig or set KUBECONFIG") from exc


def _refused(exc) -> ApiRefused:
    """The server's own message for a refused request."""
    import json

    try:
        message = json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError):
        message = exc.reason
    return ApiRefused(f"the API refused the request ({exc.status} {exc.reason}): {message}")


def _calling(action: Callable, *args, **kwargs):
    """`action(*args, **kwargs)`, with API refusals and unreachable servers reported as ApiRefused."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return action(*args, **kwargs)
    except ApiException as exc:
        raise _refused(exc) from exc
    except HTTPError as exc:
        raise ApiRefused(f"the API server cannot be reached ({exc}); check the kubeconfig and the network") from exc


def _creators(connection: Connection) -> dict[str, Callable]:
    """How each kind the launcher renders is created."""
    from kubernetes import client

    return {
        "Job": client.BatchV1Api(connection.api).create_namespaced_job,
        "Service": client.CoreV1Api(connection.api).create_namespaced_service,
        "NetworkPolicy": client.NetworkingV1Api(connection.api).create_namespaced_network_policy,
    }


def submit(connection: Connection, documents: list[dict], dry_run: bool) -> list[str]:
    """Create the manifests (server-side dry run if asked; the server refuses unknown fields): the Job first,
    then the objects it owns (a multi-pod job's Service, its NetworkPolicy), so deleting the Job deletes them
    too. Returns `Kind/name` of each."""
    creators = _creators(connection)
    unknown = sorted({document["kind"] for document in documents} - set(creators))
    if unknown:
        raise SpecError(f"cannot submit a {unknown[0]}")
    created = []
    owners: list[dict] = []
    dry = "All" if dry_run else None
    for document in sorted(documents, key=lambda item: item["kind"] != "Job"):
        namespace = document["metadata"].get("namespace", connection.namespace)
        if document["kind"] != "Job":
            document = {**document, "metadata": {**document["metadata"], "ownerReferences": owners}}
        made = _calling(creators[document["kind"]], namespace, document, dry_run=dry, field_validation="Strict")
        if document["kind"] == "Job" and made.metadata.uid:
            owners.append(
                {"apiVersion": "batch/v1", "kind": "Job", "name": made.metadata.name, "uid": made.metadata.uid}
            )
        created.append(f"{document['kind']}/{document['metadata']['name']}")
    return created


def job_state(job: dict) -> str:
    """Succeeded, Failed, Suspended or Running, from a Job's conditions and status."""
    conditions = {c["type"]: c.get("status") for c in (job.get("status") or {}).get("conditions") or []}
    if conditions.get("Complete") == "True":
        return "Succeeded"
    if conditions.get("Failed") == "True":
        return "Failed"
    if conditions.get("Suspended") == "True" or (job.get("spec") or {}).get("suspend"):
        return "Suspended"
    return "Running"


def _as_dict(connection: Connection, job) -> dict:
    return connection.api.sanitize_for_serialization(job)


def status(connection: Connection, name: str) -> dict:
    from kubernetes import client

    batch = client.BatchV1Api(connection.api)
    job = _as_dict(connection, _calling(batch.read_namespaced_job, name, connection.namespace))
    counts = job.get("status") or {}
    return {
        "name": name,
        "namespace": connection.namespace,
        "state": job_state(job),
        "active": counts.get("active", 0),
        "succeeded": counts.get("succeeded", 0),
        "failed": counts.get("failed", 0),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message")} for c in counts.get("conditions") or []
        ],
    }


def list_jobs(connection: Connection) -> list[dict]:
    from kubernetes import client

    batch = client.BatchV1Api(connection.api)
    jobs = _calling(batch.list_namespaced_job, connection.namespace, label_selector=MANAGED)
    return [
        {"name": job["metadata"]["name"], "state": job_state(job), "created": job["metadata"].get("creationTimestamp")}
        for job in (_as_dict(connection, item) for item in jobs.items)
    ]


def cancel(connection: Connection, name: str) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(connection.api)
    _calling(batch.delete_namespaced_job, name, connection.namespace, propagation_policy="Background")


def wait(
    connection: Connection, name: str, timeout: float | None, on_change: Callable[[dict], None] = lambda job: None
) -> str:
    """Follow the Job until it succeeds or fails; returns the final state. Raises TimedOut."""
    from kubernetes import client, watch
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    batch = client.BatchV1Api(connection.api)
    deadline = None if timeout is None else time.monotonic() + timeout
    selector = f"metadata.name={name}"

    def relist() -> tuple[str, str]:
        listed = _calling(batch.list_namespaced_job, connection.namespace, field_selector=selector)
        jobs = [_as_dict(connection, item) for item in listed.items]
        if not jobs:
            raise ApiRefused(f"job {name} does not exist in namespace {connection.namespace}")
        on_change(jobs[0])
        return job_state(jobs[0]), listed.metadata.resource_version

    state, version = relist()
    while state not in ("Succeeded", "Failed"):
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimedOut(f"job {name} still {state.lower()} after {timeout:g} s")
        seconds = int(min(WATCH_SECONDS, remaining if remaining is not None else WATCH_SECONDS)) or 1
        try:
            for event in watch.Watch().stream(
                batch.list_namespaced_job,
                connection.namespace,
                field_selector=selector,
                resource_version=version,
                timeout_seconds=seconds,
                allow_watch_bookmarks=True,
            ):
                job = _as_dict(connection, event["object"])
                version = job["metadata"].get("resourceVersion", version)
                if event["type"] == "BOOKMARK":
                    continue
                if event["type"] == "DELETED":
                    raise ApiRefused(f"job {name} was deleted")
                on_change(job)
                state = job_state(job)
                if state in ("Succeeded", "Failed"):
                    return state
        except ApiException as exc:
            if exc.status != 410:
                raise _refused(exc) from exc
            state, version = relist()  # the watch window expired: list again, then watch from there
        except HTTPError:
            time.sleep(RECONNECT_SECONDS)  # dropped connection: watch again from the last version seen
    return state


def _timestamp(line: str) -> datetime | None:
    stamp = line.split(" ", 1)[0]
    try:
        whole, _, fraction = stamp.rstrip("Z").partition(".")
        moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        return moment.replace(microsecond=int((fraction + "000000")[:6]))
    except ValueError:
        return None


COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


def _job_pod(connection: Connection, name: str) -> dict | None:
    from kubernetes import client

    core = client.CoreV1Api(connection.api)
    pods = _calling(core.list_namespaced_pod, connection.namespace, label_selector=f"job-name={name}")
    items = [_as_dict(connection, pod) for pod in pods.items]
    # Of a multi-pod job, pod 0 (rank 0 reports the run); of a single-pod job, its only index.
    first = [pod for pod in items if (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX, "0") == "0"]
    return max(first or items, key=lambda pod: pod["metadata"].get("creationTimestamp") or "", default=None)


def stream_logs(connection: Connection, name: str, follow: bool) -> Iterator[str]:
    """The lines of the Job's newest pod; when following, reconnects after a dropped stream and skips lines
    already shown (by their timestamps)."""
    from kubernetes import client
    from urllib3.exceptions import HTTPError

    core = client.CoreV1Api(connection.api)
    last_seen: datetime | None = None
    while True:
        pod = _job_pod(connection, name)
        phase = (pod or {}).get("status", {}).get("phase", "Pending")
        if pod is None or phase == "Pending":
            if not follow:
                raise ApiRefused(f"job {name} has no started pod yet in namespace {connection.namespace}")
            time.sleep(RECONNECT_SECONDS)  # scheduled, pulling the image...: logs exist once it runs
            continue
        pod_name = pod["metadata"]["name"]
        since = None
        if last_seen is not None:
            since = max(1, int((datetime.now(timezone.utc) - last_seen).total_seconds()) + 2)
        response = _calling(
            core.read_namespaced_pod_log,
            pod_name,
            connection.namespace,
            follow=follow,
            timestamps=True,
            since_seconds=since,
            _preload_content=False,
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        dropped = False

        def fresh(line: str) -> str | None:
            """The line without its timestamp, or None if it was shown before a reconnect."""
            nonlocal last_seen
            moment = _timestamp(line)
            if moment is None:
                return line
            if last_seen is not None and moment <= last_seen:
                return None
            last_seen = moment
            return line.split(" ", 1)[1] if " " in line else ""

        try:
            for chunk in response.stream(4096):
                pending += decoder.decode(chunk)
                *lines, pending = pending.split("\n")
                for line in lines:
                    if (shown := fresh(line)) is not None:
                        yield shown
            pending += decoder.decode(b"", final=True)
            if pending and (shown := fresh(pending)) is not None:
                yield shown
        except HTTPError:
            dropped = True  # a partial line is read again after reconnecting
        finally:
            response.release_conn()
        if not follow:
            return
        if not dropped and (_job_pod(connection, name) or {}).get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        time.sleep(RECONNECT_SECONDS)
