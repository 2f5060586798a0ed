"""Jobs in the cluster through the official client: submit, observe (the Job with its pods, events, Kueue
Workload and progress), wait, list and cancel. Every request has a time limit; every wait has one deadline.

Waits watch the Job between observations, so they wake at once when it changes; watches survive dropped
connections and `410 Gone`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from launcher.connection import Connection, Deadline, refused
from launcher.diagnose import Report, diagnose
from launcher.errors import ApiRefused, SpecError

MANAGED = "app.kubernetes.io/managed-by=launcher"
RECONNECT_SECONDS = 1.0
POLL_SECONDS = 5.0  # the longest a wait goes without looking at the pods and events again
LOG_TAIL_LINES = 400  # of the newest pod, for progress and the summary
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
KUEUE = ("kueue.x-k8s.io", "v1beta1", "workloads")


def _creators(connection: Connection) -> dict[str, Callable]:
    """How each kind the launcher renders is created."""
    from kubernetes import client

    return {
        "Job": client.BatchV1Api(connection.api).create_namespaced_job,
        "Service": client.CoreV1Api(connection.api).create_namespaced_service,
        "NetworkPolicy": client.NetworkingV1Api(connection.api).create_namespaced_network_policy,
    }


def submit(connection: Connection, documents: list[dict], dry_run: bool) -> list[str]:
    """Create the manifests with strict field validation (server-side dry run if asked): the Job first, then
    the objects it owns (a multi-pod job's Service, its NetworkPolicy), so deleting the Job deletes them too.
    Returns `Kind/name` of each."""
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
        made = connection.call(creators[document["kind"]], namespace, document, dry_run=dry, field_validation="Strict")
        if document["kind"] == "Job" and made.metadata.uid:
            owners.append(
                {"apiVersion": "batch/v1", "kind": "Job", "name": made.metadata.name, "uid": made.metadata.uid}
            )
        created.append(f"{document['kind']}/{document['metadata']['name']}")
    return created


def read_job(connection: Connection, name: str) -> dict:
    from kubernetes import client

    try:
        return connection.as_dict(
            connection.call(client.BatchV1Api(connection.api).read_namespaced_job, name, connection.namespace)
        )
    except ApiRefused as exc:
        if "404" in str(exc):
            raise ApiRefused(
                f"job {name} not found in {connection.where()}; pass -n NAMESPACE if it was submitted elsewhere"
            ) from None
        raise


def job_pods(connection: Connection, selector: str) -> list[dict]:
    from kubernetes import client

    listed = connection.call(
        client.CoreV1Api(connection.api).list_namespaced_pod, connection.namespace, label_selector=selector
    )
    return [connection.as_dict(pod) for pod in listed.items]


def primary_pod(pods: list[dict]) -> dict | None:
    """Of a multi-pod job, the newest pod 0 (rank 0 reports the run); of a single-pod job, its newest pod."""
    first = [pod for pod in pods if (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX, "0") == "0"]
    return max(first or pods, key=lambda pod: pod["metadata"].get("creationTimestamp") or "", default=None)


def _events(connection: Connection, names: list[str]) -> list[dict]:
    from kubernetes import client

    core = client.CoreV1Api(connection.api)
    found: list[dict] = []
    for name in names:
        listed = connection.call(
            core.list_namespaced_event, connection.namespace, field_selector=f"involvedObject.name={name}"
        )
        found += [connection.as_dict(event) for event in listed.items]
    return found


def _workloads(connection: Connection, job: dict) -> list[dict]:
    """The Kueue Workloads of a Job (none when Kueue is not installed)."""
    from kubernetes import client

    uid = job["metadata"].get("uid")
    if not uid:
        return []
    try:
        listed = connection.call(
            client.CustomObjectsApi(connection.api).list_namespaced_custom_object,
            *KUEUE[:2],
            connection.namespace,
            KUEUE[2],
            label_selector=f"kueue.x-k8s.io/job-uid={uid}",
        )
    except ApiRefused as exc:
        if "404" in str(exc) or "403" in str(exc):
            return []  # no Kueue here, or no right to read its objects: the Job's own state still tells
        raise
    return list(listed.get("items") or [])


def _log_tail(connection: Connection, pod: dict) -> list[str]:
    from kubernetes import client

    try:
        response = connection.call(
            client.CoreV1Api(connection.api).read_namespaced_pod_log,
            pod["metadata"]["name"],
            connection.namespace,
            tail_lines=LOG_TAIL_LINES,
            _preload_content=False,  # the raw text: the client would turn one JSON line into a dict's repr
        )
    except ApiRefused:
        return []  # a log that cannot be read leaves progress unknown, not the state
    return response.data.decode("utf-8", errors="replace").splitlines()


def observe(connection: Connection, name: str, job: dict | None = None) -> Report:
    """The Job's phase and its one explaining line, from the Job, its pods, their events, its Kueue Workload
    and the newest pod's progress lines."""
    job = job or read_job(connection, name)
    job.setdefault("metadata", {}).setdefault("namespace", connection.namespace)
    pods = job_pods(connection, f"job-name={name}")
    ended = any(
        c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
        if c.get("type") in ("Complete", "Failed")
    )
    running = [pod for pod in pods if (pod.get("status") or {}).get("phase") == "Running"]
    events, workloads, lines = [], [], []
    if not ended and not running:
        waiting = [pod["metadata"]["name"] for pod in pods if (pod.get("status") or {}).get("phase") == "Pending"]
        events = _events(connection, [name, *waiting])
        if (job.get("spec") or {}).get("suspend"):
            workloads = _workloads(connection, job)
    newest = primary_pod(pods)
    if newest and (newest.get("status") or {}).get("phase") in ("Running", "Succeeded"):
        lines = _log_tail(connection, newest)
    return diagnose(job, pods, events, workloads, lines)


def find_jobs(connection: Connection, selector: str = MANAGED) -> list[dict]:
    """The Jobs in the namespace with these labels (one request)."""
    from kubernetes import client

    listed = connection.call(
        client.BatchV1Api(connection.api).list_namespaced_job, connection.namespace, label_selector=selector
    )
    return [connection.as_dict(item) for item in listed.items]


def job_reports(connection: Connection, selector: str = MANAGED) -> list[tuple[dict, Report]]:
    """The Jobs with these labels, each with its phase from its pods (two requests in all)."""
    jobs = find_jobs(connection, selector)
    pods: dict[str, list[dict]] = {}
    for pod in job_pods(connection, selector) if jobs else []:
        pods.setdefault((pod["metadata"].get("labels") or {}).get("job-name", ""), []).append(pod)
    reports = []
    for job in jobs:
        job["metadata"].setdefault("namespace", connection.namespace)
        report = diagnose(job, pods.get(job["metadata"]["name"], []))
        report.created = job["metadata"].get("creationTimestamp")
        reports.append((job, report))
    return reports


def list_jobs(connection: Connection) -> list[Report]:
    """The launcher's Jobs in the namespace, each with its phase from its pods (two requests in all)."""
    return [report for _, report in job_reports(connection)]


def cancel(connection: Connection, name: str) -> None:
    from kubernetes import client

    read_job(connection, name)  # a missing Job is named with its namespace
    connection.call(
        client.BatchV1Api(connection.api).delete_namespaced_job,
        name,
        connection.namespace,
        propagation_policy="Background",
    )


def _watch_for_change(connection: Connection, name: str, version: str | None, seconds: float) -> str | None:
    """Block until the Job changes or `seconds` pass (a dropped connection or `410 Gone` ends it early: the
    next observation lists afresh); returns the newest resource version seen."""
    from kubernetes import client, watch
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    batch = client.BatchV1Api(connection.api)
    window = max(1, int(seconds))
    try:
        for event in watch.Watch().stream(
            batch.list_namespaced_job,
            connection.namespace,
            field_selector=f"metadata.name={name}",
            resource_version=version,
            timeout_seconds=window,
            allow_watch_bookmarks=True,
            _request_timeout=(connection.request_timeout, window + connection.request_timeout),
        ):
            job = connection.as_dict(event["object"])
            version = (job.get("metadata") or {}).get("resourceVersion", version)
            if event["type"] == "DELETED":
                raise ApiRefused(f"job {name} in {connection.where()} was deleted")
            if event["type"] != "BOOKMARK":
                return version
    except ApiException as exc:
        if exc.status == 410:
            return None  # the watch window expired: observe again, then watch from there
        raise refused(exc, connection) from exc
    except HTTPError:
        time.sleep(RECONNECT_SECONDS)  # dropped connection: watch again from the last version seen
    return version


def wait(
    connection: Connection, name: str, deadline: Deadline, on_report: Callable[[Report], None] = lambda report: None
) -> Report:
    """Follow the Job until it ends or is stuck (a state that will not heal on its own); `on_report` sees every
    change. Raises TimedOut with what was seen last."""
    from kubernetes import client

    batch = client.BatchV1Api(connection.api)
    shown = None
    while True:
        listed = connection.call(
            batch.list_namespaced_job, connection.namespace, field_selector=f"metadata.name={name}"
        )
        if not listed.items:
            raise ApiRefused(f"job {name} not found in {connection.where()}")
        report = observe(connection, name, connection.as_dict(listed.items[0]))
        if report.text() != shown:
            on_report(report)
            shown = report.text()
        if report.ended or report.stuck:
            return report
        deadline.check(report.text())
        _watch_for_change(connection, name, listed.metadata.resource_version, deadline.cap(POLL_SECONDS))
