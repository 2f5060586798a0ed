"""A local HTTP server speaking the Kubernetes wire format for the requests the launcher makes: Job create
(with dry run), read, list, watch, delete; Pod list and log streams; Status bodies for 403, 404, 409, 410
and 422. No kube-apiserver can run here; this is the closest faithful stand-in, driven by the real
`kubernetes` client."""

from __future__ import annotations

import copy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

TOKEN = "test-token"


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
        self.pods: dict[str, list[dict]] = {}  # job name -> pods
        self.services: dict[tuple[str, str], dict] = {}
        self.network_policies: dict[tuple[str, str], dict] = {}
        self.version = 100
        self.requests: list[tuple[str, str]] = []
        self.watch_sessions: list[list] = []  # each: list of ("event", type, job) | ("gone",) | ("drop",)
        self.log_sessions: list[list] = []  # each: list of bytes chunks, then "drop" or "end"
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "ci", "user": {"token": TOKEN}}],
                    "contexts": [
                        {"name": "fake", "context": {"cluster": "fake", "user": "ci", "namespace": namespace}},
                        {"name": "other", "context": {"cluster": "fake", "user": "ci", "namespace": "other"}},
                    ],
                }
            )
        )
        return path

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
                    job_name = query.get("labelSelector", [""])[0].removeprefix("job-name=")
                    return self._send(
                        200,
                        {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": fake.pods.get(job_name, [])},
                    )
                if parts[:2] == ["api", "v1"] and parts[-1] == "log":
                    session = fake.log_sessions.pop(0) if fake.log_sessions else [b""]
                    return self._stream("text/plain", session)
                self._send(404, status_body(404, "NotFound", "the server could not find the requested resource"))

            def _jobs(self, namespace: str, query: dict) -> None:
                selected = [job for (ns, _), job in fake.jobs.items() if ns == namespace]
                field = query.get("fieldSelector", [""])[0]
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
