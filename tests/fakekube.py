"""A local HTTP server speaking the Kubernetes wire format for the requests the launcher makes: Job create
(with dry run and strict field validation: unknown fields answered 400 with the API server's message, found
with the real Kubernetes schemas), read, list, watch, delete; Pod list with label selectors, log tails and
log streams; Events by involved object; Kueue Workloads (404 when Kueue is not installed); Status bodies for
400, 401, 403, 404, 409, 410 and 422. Pods, events and workloads are the documents a control plane shows
(waiting reasons, PodScheduled conditions, admission conditions), set by each test. No kube-apiserver can run
here; this is the closest faithful stand-in, driven by the real `kubernetes` client. `SilentServer` accepts
connections and never answers."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

TOKEN = "test-token"
SPEC = {  # a job spec for the cluster tests: the Job `tiny` in namespace `ml`
    "name": "tiny",
    "namespace": "ml",
    "image": "finetune:1",
    "model": "mindspore/1.6/googlenet_cifar10",
    "train_data": "s3://b/train",
    "eval_data": "s3://b/eval",
    "output": "s3://b/out",
}


def status_body(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeKube:
    """State (jobs, pods) plus scripted watch and log sessions; records every request."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], dict] = {}
        self.pods: dict[str, list[dict]] = {}  # job name -> pods (listed with job-name and launcher labels)
        self.events: list[dict] = []
        self.workloads: list[dict] | None = None  # None: Kueue is not installed (its API answers 404)
        self.log_text: dict[str, str] = {}  # pod name -> what a log tail (tailLines) returns
        self.services: dict[tuple[str, str], dict] = {}
        self.network_policies: dict[tuple[str, str], dict] = {}
        self.version = 100
        self.requests: list[tuple[str, str]] = []
        # Off by default (earlier tests list unlabelled Jobs); on, Job lists honour key=value label selectors.
        self.select_jobs_by_label = False
        self.watch_sessions: list[list] = []  # each: list of ("event", type, job) | ("gone",) | ("drop",)
        self.log_sessions: list[list] = []  # each: list of bytes chunks, then "drop" or "end"
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeKube:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path: Path, namespace: str = "ml") -> Path:
        return write_kubeconfig(path, self.url, namespace)

    def next_version(self) -> str:
        self.version += 1
        return str(self.version)

    def store_job(self, namespace: str, job: dict) -> dict:
        job = copy.deepcopy(job)
        job.setdefault("metadata", {}).update(
            namespace=namespace,
            resourceVersion=self.next_version(),
            uid=f"uid-{self.version}",
            creationTimestamp="2026-11-27T10:00:00Z",
        )
        job.setdefault("status", {})
        self.jobs[(namespace, job["metadata"]["name"])] = job
        return job

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _stream(self, content_type: str, items: list) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for item in items:
                    if item == "drop":  # the connection breaks: no terminating chunk
                        self.close_connection = True
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        return
                    self._chunk(item)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, status_body(401, "Unauthorized", "Unauthorized"))
                    return False
                return True

            def do_POST(self) -> None:
                url = urlparse(self.path)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(("POST", self.path))
                if not self._authorized():
                    return
                parts = url.path.strip("/").split("/")  # apis batch v1 namespaces NS jobs | api v1 ... services
                namespace, name = parts[parts.index("namespaces") + 1], body["metadata"]["name"]
                if parse_qs(url.query).get("fieldValidation") == ["Strict"] and (unknown := unknown_field(body)):
                    kind = body.get("kind")
                    return self._send(
                        400,
                        status_body(
                            400,
                            "BadRequest",
                            f'{kind} in version "v1" cannot be handled as a {kind}: strict decoding error: '
                            f'unknown field "{unknown}"',
                        ),
                    )
                if parts[-1] in ("services", "networkpolicies"):
                    stored = fake.services if parts[-1] == "services" else fake.network_policies
                    with fake.lock:
                        if (namespace, name) in stored:
                            return self._send(
                                409, status_body(409, "AlreadyExists", f'{parts[-1]} "{name}" already exists')
                            )
                        stored[(namespace, name)] = body
                    return self._send(201, body)
                if namespace == "forbidden":
                    return self._send(
                        403,
                        status_body(
                            403,
                            "Forbidden",
                            f'jobs.batch is forbidden: User "ci" '
                            f'cannot create resource "jobs" in API group "batch" in '
                            f'the namespace "{namespace}"',
                        ),
                    )
                if name.startswith("invalid"):
                    return self._send(
                        422,
                        status_body(
                            422,
                            "Invalid",
                            f'Job.batch "{name}" is invalid: spec.template.spec.containers[0].image: Required value',
                        ),
                    )
                with fake.lock:
                    if (namespace, name) in fake.jobs:
                        return self._send(409, status_body(409, "AlreadyExists", f'jobs.batch "{name}" already exists'))
                    if parse_qs(url.query).get("dryRun") == ["All"]:
                        return self._send(201, body)
                    self._send(201, fake.store_job(namespace, body))

            def do_DELETE(self) -> None:
                fake.requests.append(("DELETE", self.path))
                if not self._authorized():
                    return
                parts = urlparse(self.path).path.strip("/").split("/")
                key = (parts[4], parts[6])
                with fake.lock:
                    if fake.jobs.pop(key, None) is None:
                        return self._send(404, status_body(404, "NotFound", f'jobs.batch "{key[1]}" not found'))
                self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fake.requests.append(("GET", self.path))
                if not self._authorized():
                    return
                parts = url.path.strip("/").split("/")
                if parts[:3] == ["apis", "batch", "v1"] and len(parts) == 6:
                    return self._jobs(parts[4], query)
                if parts[:3] == ["apis", "batch", "v1"] and len(parts) == 7:
                    job = fake.jobs.get((parts[4], parts[6]))
                    if job is None:
                        return self._send(404, status_body(404, "NotFound", f'jobs.batch "{parts[6]}" not found'))
                    return self._send(200, job)
                if parts[:2] == ["api", "v1"] and parts[-1] == "pods":
                    wanted = dict(pair.split("=", 1) for pair in query.get("labelSelector", [""])[0].split(",") if pair)
                    labelled = [
                        {**pod, "metadata": {**pod["metadata"], "labels": pod_labels(pod, job_name)}}
                        for job_name, pods in list(fake.pods.items())
                        for pod in pods
                    ]
                    items = [pod for pod in labelled if wanted.items() <= pod["metadata"]["labels"].items()]
                    return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                if parts[:2] == ["api", "v1"] and parts[-1] == "events":
                    field = query.get("fieldSelector", [""])[0].removeprefix("involvedObject.name=")
                    items = [event for event in fake.events if event["involvedObject"]["name"] == field]
                    return self._send(200, {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": items})
                if parts[:3] == ["apis", "kueue.x-k8s.io", "v1beta1"] and parts[-1] == "workloads":
                    if fake.workloads is None:
                        return self._send(
                            404, status_body(404, "NotFound", "the server could not find the requested resource")
                        )
                    uid = query.get("labelSelector", [""])[0].removeprefix("kueue.x-k8s.io/job-uid=")
                    items = [w for w in fake.workloads if w["metadata"]["labels"]["kueue.x-k8s.io/job-uid"] == uid]
                    return self._send(
                        200,
                        {
                            "apiVersion": "kueue.x-k8s.io/v1beta1",
                            "kind": "WorkloadList",
                            "metadata": {},
                            "items": items,
                        },
                    )
                if parts[:2] == ["api", "v1"] and parts[-1] == "log":
                    if "tailLines" in query:  # a status read, not a stream
                        text = fake.log_text.get(parts[-2], "").encode()
                        self.send_response(200)
                        self.send_header("Content-Type", "text/plain")
                        self.send_header("Content-Length", str(len(text)))
                        self.end_headers()
                        self.wfile.write(text)
                        return
                    session = fake.log_sessions.pop(0) if fake.log_sessions else [b""]
                    return self._stream("text/plain", session)
                self._send(404, status_body(404, "NotFound", "the server could not find the requested resource"))

            def _jobs(self, namespace: str, query: dict) -> None:
                selected = [job for (ns, _), job in list(fake.jobs.items()) if ns == namespace]  # a snapshot
                field = query.get("fieldSelector", [""])[0]
                wanted = dict(pair.split("=", 1) for pair in query.get("labelSelector", [""])[0].split(",") if pair)
                if fake.select_jobs_by_label:
                    selected = [j for j in selected if wanted.items() <= (j["metadata"].get("labels") or {}).items()]
                if field.startswith("metadata.name="):
                    selected = [job for job in selected if job["metadata"]["name"] == field.split("=", 1)[1]]
                if query.get("watch") not in (["true"], ["1"], ["True"]):
                    return self._send(
                        200,
                        {
                            "kind": "JobList",
                            "apiVersion": "batch/v1",
                            "metadata": {"resourceVersion": str(fake.version)},
                            "items": selected,
                        },
                    )
                if not fake.watch_sessions:  # nothing happens: a quiet watch that ends after a while
                    time.sleep(0.2)
                session = fake.watch_sessions.pop(0) if fake.watch_sessions else []
                items: list[bytes | str] = []  # chunks, or "drop" to break the connection
                for step in session:
                    if step[0] == "event":
                        with fake.lock:
                            job = fake.store_job(namespace, step[2])
                        items.append(json.dumps({"type": step[1], "object": job}).encode() + b"\n")
                    elif step[0] == "gone":
                        items.append(
                            json.dumps(
                                {
                                    "type": "ERROR",
                                    "object": status_body(410, "Expired", "too old resource version: 1 (2)"),
                                }
                            ).encode()
                            + b"\n"
                        )
                    else:
                        items.append("drop")
                self._stream("application/json", items)

        return Handler


class JobRunner:
    """Plays the Job controller for the Jobs created on a FakeKube: each runs for `seconds`, then `on_finish(job)`
    does the job's own work (writing its metrics.json, say) and it is marked Complete (Failed for the names in
    `fail`, without on_finish); the names in `hold` keep running. Records the most Jobs unfinished at once."""

    def __init__(self, fake: FakeKube, seconds: float, on_finish: Callable[[dict], None] = lambda job: None):
        self.fake, self.seconds, self.on_finish = fake, seconds, on_finish
        self.fail: set[str] = set()
        self.hold: set[str] = set()
        self.seen: dict[str, float] = {}
        self.most_unfinished = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JobRunner:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(0.02):
            with self.fake.lock:
                unfinished = [job for job in self.fake.jobs.values() if not job["status"].get("conditions")]
                self.most_unfinished = max(self.most_unfinished, len(unfinished))
                for job in unfinished:
                    name = job["metadata"]["name"]
                    started = self.seen.setdefault(name, time.monotonic())
                    if name not in self.hold and time.monotonic() - started >= self.seconds:
                        self._finish(job)

    def _finish(self, job: dict) -> None:
        failed = job["metadata"]["name"] in self.fail
        if not failed:
            self.on_finish(job)
        condition = {"type": "Failed" if failed else "Complete", "status": "True", "reason": "Test"}
        job["status"] = {"conditions": [condition]}
        job["metadata"]["resourceVersion"] = self.fake.next_version()


def write_kubeconfig(path: Path, server: str, namespace: str = "ml") -> Path:
    """A kubeconfig with a token user and two contexts: `fake` (the namespace given) and `other`."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "ci", "user": {"token": TOKEN}}],
                "contexts": [
                    {"name": "fake", "context": {"cluster": "fake", "user": "ci", "namespace": namespace}},
                    {"name": "other", "context": {"cluster": "fake", "user": "ci", "namespace": "other"}},
                ],
            }
        )
    )
    return path


def pod_labels(pod: dict, job_name: str) -> dict:
    """A pod's labels as the Job controller sets them, plus the template's (the launcher's) own."""
    return {"job-name": job_name, "app.kubernetes.io/managed-by": "launcher", **(pod["metadata"].get("labels") or {})}


def unknown_field(document: dict) -> str | None:
    """The first field the Kubernetes schema does not declare, as the API server names it
    (`spec.template.spec.tolerations[0].opertor`), or None."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(document, "1.33.0", strict=True)
    except kubernetes_validate.ValidationError as exc:
        if exc.validator != "additionalProperties":
            return None
        path = ""
        for part in exc.path:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        field = exc.message.split("'")[1]
        return f"{path}.{field}".lstrip(".")
    return None


class SilentServer:
    """Accepts TCP connections and never answers: an API server that hangs."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.accepted: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted.append(connection)  # kept open, never read from or written to

    def stop(self) -> None:
        self.socket.close()
        for connection in self.accepted:
            connection.close()
