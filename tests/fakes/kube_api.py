"""A fake kube-apiserver that answers only the calls ``nodestatus.sinks.kube`` makes.

No kube-apiserver can be installed on the test machines, so the Kubernetes backend is tested
against this: cluster-scoped ``caliconodestatuses.crd.projectcalico.org/v1`` with list
(limit/continue), watch (chunked JSON lines, ``timeoutSeconds``, ``allowWatchBookmarks``, a
410 ``ERROR`` event for a compacted resourceVersion), get, and PUT on the ``status``
subresource (409 on a stale resourceVersion, 413 over ``max_body``, etcd's "request is too
large" over ``max_stored``; only ``status`` is taken from the body). One global
resourceVersion counter, as etcd's revision. Tests change objects through the helpers, which
push watch events. Not modelled: auth, namespaces, selectors, other resources, PATCH.
"""
from __future__ import annotations

import copy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

GROUP, VERSION, PLURAL = "crd.projectcalico.org", "v1", "caliconodestatuses"
PREFIX = f"/apis/{GROUP}/{VERSION}/{PLURAL}"


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class FakeKubeAPI:
    def __init__(self, *, max_body: int = 3 * 1024 * 1024, max_stored: int = 0) -> None:
        self.max_body, self.max_stored = max_body, max_stored
        self.objects: dict = {}
        self.rv = 1                    # global resourceVersion (etcd revision)
        self.history: list = []        # (rv, type, object) since `oldest`
        self.oldest = 0                # a watch from below this gets 410 Gone
        self.requests: list = []       # (method, path, query dict, Authorization) as received
        self.cond = threading.Condition()
        self.server = None
        self.port = 0
        self._conns: set = set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FakeKubeAPI":
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self.server.daemon_threads, self.server.block_on_close = True, False
        self.server.api = self
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listener and drop every open connection (watch streams end mid-way,
        without the final chunk, as when an apiserver dies). ``start()`` again reuses
        the port and keeps the objects."""
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server = None
        with self.cond:
            self.cond.notify_all()
        for conn in list(self._conns):
            try:
                conn.shutdown(2)
            except OSError:
                pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- test helpers (each write bumps the global resourceVersion and notifies watches) ----
    def _push(self, kind: str, obj: dict) -> dict:
        with self.cond:
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self.history.append((self.rv, kind, copy.deepcopy(obj)))
            self.cond.notify_all()
        return copy.deepcopy(obj)

    def create(self, name: str, spec: dict, status: dict | None = None) -> dict:
        obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "CalicoNodeStatus",
               "metadata": {"name": name, "uid": f"uid-{name}", "generation": 1,
                            "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": spec}
        if status is not None:
            obj["status"] = status
        with self.cond:
            assert name not in self.objects, name
            self.objects[name] = obj
            return self._push("ADDED", obj)

    def update(self, name: str, spec: dict | None = None, status: dict | None = None) -> dict:
        with self.cond:
            obj = self.objects[name]
            if spec is not None:
                obj["spec"] = spec
                obj["metadata"]["generation"] += 1
            if status is not None:
                obj["status"] = status
            return self._push("MODIFIED", obj)

    def delete(self, name: str) -> dict:
        with self.cond:
            return self._push("DELETED", self.objects.pop(name))

    def bump(self, n: int = 1) -> None:
        """Writes to other resources: the revision moves, no event for us."""
        with self.cond:
            self.rv += n

    def bookmark(self) -> None:
        with self.cond:
            self.history.append((self.rv, "BOOKMARK", {
                "kind": "CalicoNodeStatus", "apiVersion": f"{GROUP}/{VERSION}",
                "metadata": {"resourceVersion": str(self.rv)}}))
            self.cond.notify_all()

    def compact(self) -> None:
        """Forget history: watches from an older resourceVersion get 410 Gone."""
        with self.cond:
            self.history.clear()
            self.oldest = self.rv


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver/0"

    def log_message(self, *args) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.server.api._conns.add(self.connection)

    def finish(self) -> None:
        self.server.api._conns.discard(self.connection)
        super().finish()

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str):
        api = self.server.api
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        api.requests.append((method, url.path, query, self.headers.get("Authorization")))
        rest = url.path[len(PREFIX):].strip("/").split("/") if url.path.startswith(PREFIX) else None
        return api, query, rest

    def do_GET(self) -> None:
        api, query, rest = self._route("GET")
        if rest == [""]:
            if query.get("watch") in ("true", "1"):
                return self._watch(api, query)
            with api.cond:
                items = [copy.deepcopy(api.objects[k]) for k in sorted(api.objects)]
                rv = str(api.rv)
            start = int(query.get("continue") or 0)
            limit = int(query.get("limit") or 0) or len(items)
            meta = {"resourceVersion": rv}
            if start + limit < len(items):
                meta["continue"] = str(start + limit)
            return self._send(200, {"apiVersion": f"{GROUP}/{VERSION}",
                                    "kind": "CalicoNodeStatusList", "metadata": meta,
                                    "items": items[start:start + limit]})
        if rest and len(rest) == 1:
            with api.cond:
                obj = copy.deepcopy(api.objects.get(rest[0]))
            if obj is None:
                return self._send(404, _status(404, "NotFound", f'{PLURAL}.{GROUP} "{rest[0]}" not found'))
            return self._send(200, obj)
        self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))

    def do_PUT(self) -> None:
        api, query, rest = self._route("PUT")
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not (rest and len(rest) == 2 and rest[1] == "status"):
            return self._send(405, _status(405, "MethodNotAllowed", "only the status subresource"))
        name = rest[0]
        if len(data) > api.max_body:
            return self._send(413, _status(413, "RequestEntityTooLarge",
                                           f"Request entity too large: limit is {api.max_body}"))
        body = json.loads(data)
        with api.cond:
            obj = api.objects.get(name)
            if obj is None:
                return self._send(404, _status(404, "NotFound", f'{PLURAL}.{GROUP} "{name}" not found'))
            sent = (body.get("metadata") or {}).get("resourceVersion")
            if not sent:
                return self._send(422, _status(422, "Invalid", "metadata.resourceVersion: must be specified for an update"))
            if sent != obj["metadata"]["resourceVersion"]:
                return self._send(409, _status(409, "Conflict", f'Operation cannot be fulfilled on {PLURAL}.{GROUP} "{name}": the object has been modified; please apply your changes to the latest version and try again'))
            new = dict(obj, status=body.get("status"))
            if api.max_stored and len(json.dumps(new)) > api.max_stored:
                return self._send(500, _status(500, "InternalError", "etcdserver: request is too large"))
            api.objects[name] = new
            out = api._push("MODIFIED", new)
        self._send(200, out)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, api: FakeKubeAPI, query: dict) -> None:
        since = query.get("resourceVersion") or ""
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with api.cond:
            if since in ("", "0"):  # no version: every current object as ADDED first
                pending = [("ADDED", copy.deepcopy(o)) for o in api.objects.values()]
                seen = api.rv
            elif int(since) < api.oldest:
                pending = [("ERROR", _status(410, "Expired", f"too old resource version: {since} ({api.oldest})"))]
                deadline, seen = 0, api.rv
            else:
                pending, seen = [], int(since)
        while True:
            for kind, obj in pending:
                self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            with api.cond:
                while True:
                    if api.server is None:  # stopped: drop the connection mid-stream
                        self.close_connection = True
                        return
                    pending = [(k, o) for rv, k, o in api.history
                               if rv > seen and (k != "BOOKMARK" or bookmarks)]
                    left = deadline - time.monotonic()
                    if pending or left <= 0:
                        break
                    api.cond.wait(left)
                seen = max([seen] + [rv for rv, _, _ in api.history])
            if not pending:
                self.wfile.write(b"0\r\n\r\n")   # timeoutSeconds elapsed: a clean end
                return
