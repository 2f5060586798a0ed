"""A Job's log, followed: the newest pod's lines, streamed across reconnects without repeating lines (by their
timestamps) and with UTF-8 split across chunks decoded; while no pod runs, what keeps it from running is
reported, a stuck start ends the stream, and the command's deadline applies throughout."""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from launcher import cluster
from launcher.cluster import job_pods, observe, primary_pod
from launcher.connection import Connection, Deadline
from launcher.diagnose import Report
from launcher.errors import ApiRefused

IDLE_SECONDS = 60.0  # a followed log silent this long is reopened (and the deadline looked at)


class Stopped(Exception):
    """The Job ended or got stuck before it produced a log to follow."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.text())
        self.report = report


def _timestamp(line: str) -> datetime | None:
    stamp = line.split(" ", 1)[0]
    try:
        whole, _, fraction = stamp.rstrip("Z").partition(".")
        moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        return moment.replace(microsecond=int((fraction + "000000")[:6]))
    except ValueError:
        return None


def _phase(pod: dict | None) -> str:
    return ((pod or {}).get("status") or {}).get("phase", "Pending")


def stream_logs(
    connection: Connection,
    name: str,
    follow: bool,
    deadline: Deadline | None = None,
    on_waiting: Callable[[Report], None] = lambda report: None,
) -> Iterator[str]:
    """The lines of the Job's newest pod. Following, it waits for a pod to start (`on_waiting` sees each new
    reason), raises Stopped when the Job ends or is stuck first, and TimedOut at the deadline."""
    from kubernetes import client
    from urllib3.exceptions import HTTPError

    deadline = deadline or Deadline(None)
    core = client.CoreV1Api(connection.api)
    last_seen: datetime | None = None
    shown = None
    while True:
        pod = primary_pod(job_pods(connection, f"job-name={name}"))
        if pod is None or _phase(pod) == "Pending":
            report = observe(connection, name)
            if not follow:
                raise ApiRefused(f"job {name} in {connection.where()} has no started pod yet: {report.line}")
            if report.text() != shown:
                on_waiting(report)
                shown = report.text()
            if report.ended or report.stuck:
                raise Stopped(report)
            deadline.check(report.text())
            time.sleep(
                deadline.cap(cluster.RECONNECT_SECONDS)
            )  # scheduled, pulling the image...: logs exist once it runs
            continue
        since = None
        if last_seen is not None:
            since = max(1, int((datetime.now(timezone.utc) - last_seen).total_seconds()) + 2)
        response = connection.call(
            core.read_namespaced_pod_log,
            pod["metadata"]["name"],
            connection.namespace,
            follow=follow,
            timestamps=True,
            since_seconds=since,
            _preload_content=False,
            read_timeout=deadline.cap(IDLE_SECONDS) if follow else None,
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
                    if (shown_line := fresh(line)) is not None:
                        yield shown_line
            pending += decoder.decode(b"", final=True)
            if pending and (shown_line := fresh(pending)) is not None:
                yield shown_line
        except HTTPError:
            dropped = True  # a silent or broken stream; a partial line is read again after reconnecting
        finally:
            response.release_conn()
        if not follow:
            return
        if not dropped and _phase(primary_pod(job_pods(connection, f"job-name={name}"))) in ("Succeeded", "Failed"):
            return
        deadline.check(f"job {name} in {connection.where()}: following the log of {pod['metadata']['name']}")
        time.sleep(deadline.cap(cluster.RECONNECT_SECONDS))
