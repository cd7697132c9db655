"""A fake kube-apiserver that answers only the calls ``nodestatus.sinks.kube`` makes.

No kube-apiserver can be installed on the test machines, so the Kubernetes backend is tested
against this. It models the CRD ``caliconodestatuses.crd.projectcalico.org/v1``
(cluster-scoped) in the two shapes a cluster may carry:

- ``status_subresource=False`` (the default): **Calico's own CRD**, as Calico's manifests,
  Helm chart and operator install it. API discovery lists only ``caliconodestatuses``;
  ``PUT .../NAME/status`` answers 404 ("the server could not find the requested resource");
  ``PUT .../NAME`` replaces the whole object (spec, labels, annotations and status from the
  body; uid, creationTimestamp kept; generation bumped when the spec changes).
- ``status_subresource=True``: a variant with ``subresources: {status: {}}``. Discovery also
  lists ``caliconodestatuses/status``; ``PUT .../NAME/status`` takes only ``status`` from
  the body; ``PUT .../NAME`` keeps the stored status (spec and metadata from the body).

Both: discovery 404 when ``crd_installed`` is False; list (limit/continue, labelSelector),
create (``POST``: 201 with uid, creationTimestamp, generation and resourceVersion filled;
409 AlreadyExists; 500 when the body carries a resourceVersion, as the apiserver's
"resourceVersion should not be set on objects to be created"), delete (``DELETE`` with
``preconditions.resourceVersion``: 409 when it is stale; 200 with the object),
watch (chunked JSON lines, ``timeoutSeconds``, ``allowWatchBookmarks``, labelSelector with
ADDED/DELETED for objects that start/stop matching, a 410 ``ERROR`` event for a compacted
resourceVersion), get, and the PUTs with resourceVersion as compare-and-swap (422 without
one, 409 on a stale one, 413 over ``max_body``, etcd's "request is too large" over
``max_stored``). One global resourceVersion counter, as etcd's revision. Tests change
objects through the helpers, which push watch events; ``before_put`` hooks run just before
a PUT is judged (another writer sneaking in: a real conflict), ``after_put`` hooks right
after one succeeded. Nodes (``/api/v1/nodes``, list with limit/continue) for ``nodestatus
cluster``: :meth:`add_node` with calico-node's address annotations and/or InternalIPs.
Not modelled: auth, namespaces, admission, managedFields, PATCH, watching nodes.
The label selector here is a small independent implementation (equality, inequality,
in/notin, exists, !key), not the product's parser.
"""
from __future__ import annotations

import copy
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, List
from urllib.parse import parse_qs, urlsplit

GROUP, VERSION, PLURAL = "crd.projectcalico.org", "v1", "caliconodestatuses"
DISCOVERY = f"/apis/{GROUP}/{VERSION}"
PREFIX = f"{DISCOVERY}/{PLURAL}"
NODES = "/api/v1/nodes"
NOT_FOUND_PATH = "the server could not find the requested resource"


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _not_found(name: str) -> dict:
    return _status(404, "NotFound", f'{PLURAL}.{GROUP} "{name}" not found')


_REQ = re.compile(r"^\s*(?:(!)\s*([^\s!=(),]+)|([^\s!=(),]+)\s*(?:(==|=|!=)\s*([^\s!=(),]*)"
                  r"|\s(in|notin)\s*\(([^)]*)\))?)\s*$")


def selector_matches(selector: str, labels: dict | None) -> bool:
    """The apiserver's label selector, for the forms tests use (independent of the product's
    parser on purpose)."""
    labels = labels or {}
    parts, depth, cur = [], 0, ""
    for c in selector:
        depth += c == "("
        depth -= c == ")"
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    for part in parts:
        if not part.strip():
            continue
        m = _REQ.match(part)
        assert m, f"fake apiserver: selector part {part!r} not understood"
        neg, neg_key, key, op, value, set_op, values = m.groups()
        if neg:
            ok = neg_key not in labels
        elif op in ("=", "=="):
            ok = labels.get(key) == value
        elif op == "!=":
            ok = labels.get(key) != value
        elif set_op:
            vals = {v.strip() for v in values.split(",")}
            ok = (labels.get(key) in vals) if set_op == "in" else (labels.get(key) not in vals)
        else:
            ok = key in labels
        if not ok:
            return False
    return True


def _labels(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


class FakeKubeAPI:
    def __init__(self, *, status_subresource: bool = False, crd_installed: bool = True,
                 max_body: int = 3 * 1024 * 1024, max_stored: int = 0,
                 host: str = "127.0.0.1") -> None:
        self.host = host               # where start() listens (an address in a test netns)
        self.nodes: dict = {}          # name -> Node object
        self.status_subresource = status_subresource
        self.crd_installed = crd_installed
        self.max_body, self.max_stored = max_body, max_stored
        self.objects: dict = {}
        self.rv = 1                    # global resourceVersion (etcd revision)
        self.history: list = []        # (rv, type, object, previous object) since `oldest`
        self.oldest = 0                # a watch from below this gets 410 Gone
        self.requests: list = []       # (method, path, query dict, Authorization) as received
        self.puts: list = []           # (path, name, body, answer code) of every PUT
        self.posts: list = []          # (path, body, answer code) of every POST
        self.deletes: list = []        # (path, body, answer code) of every DELETE
        self.before_put: List[Callable[[str], None]] = []   # each runs once, then is dropped
        self.after_put: List[Callable[[str], None]] = []    # run after every accepted PUT
        self.cond = threading.Condition()
        self.server = None
        self.port = 0
        self._conns: set = set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FakeKubeAPI":
        self.server = ThreadingHTTPServer((self.host, self.port), _Handler)
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
        return f"http://{self.host}:{self.port}"

    def kubeconfig(self, path, token: str = "service-account-token") -> str:
        """Write a kubeconfig whose current context is this server; returns its path."""
        import yaml

        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "agent", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "agent"}}]}))
        return str(path)

    # -- test helpers (each write bumps the global resourceVersion and notifies watches) ----
    def _push(self, kind: str, obj: dict, prev: dict | None) -> dict:
        with self.cond:
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self.history.append((self.rv, kind, copy.deepcopy(obj), prev))
            self.cond.notify_all()
        return copy.deepcopy(obj)

    def create(self, name: str, spec: dict, status: dict | None = None,
               labels: dict | None = None) -> dict:
        obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "CalicoNodeStatus",
               "metadata": {"name": name, "uid": f"uid-{name}", "generation": 1,
                            "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": spec}
        if labels is not None:
            obj["metadata"]["labels"] = labels
        if status is not None:
            obj["status"] = status
        with self.cond:
            assert name not in self.objects, name
            self.objects[name] = obj
            return self._push("ADDED", obj, None)

    def update(self, name: str, spec: dict | None = None, status: dict | None = None,
               labels: dict | None = None) -> dict:
        """Another client's write (kubectl, calico-node): spec, status and/or labels."""
        with self.cond:
            prev = copy.deepcopy(self.objects[name])
            obj = self.objects[name]
            if spec is not None:
                obj["spec"] = spec
                obj["metadata"]["generation"] += 1
            if status is not None:
                obj["status"] = status
            if labels is not None:
                obj["metadata"]["labels"] = labels
            return self._push("MODIFIED", obj, prev)

    def delete(self, name: str) -> dict:
        with self.cond:
            obj = self.objects.pop(name)
            return self._push("DELETED", obj, copy.deepcopy(obj))

    def add_node(self, name: str, ipv4: str | None = None, ipv6: str | None = None,
                 internal_ips: tuple = ()) -> dict:
        """A Node as the kubelet registers it (``internal_ips``) and calico-node annotates
        it (``ipv4``/``ipv6`` with their prefix length, e.g. ``10.77.0.1/24``)."""
        notes = {}
        if ipv4:
            notes["projectcalico.org/IPv4Address"] = ipv4
        if ipv6:
            notes["projectcalico.org/IPv6Address"] = ipv6
        with self.cond:
            self.rv += 1
            node = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "uid": f"uid-node-{name}",
                                 "resourceVersion": str(self.rv),
                                 "creationTimestamp": "2024-01-01T00:00:00Z",
                                 "labels": {"kubernetes.io/hostname": name},
                                 "annotations": notes},
                    "status": {"addresses": [{"type": "InternalIP", "address": a}
                                             for a in internal_ips] +
                               [{"type": "Hostname", "address": name}]}}
            self.nodes[name] = node
            return copy.deepcopy(node)

    # -- POST / DELETE semantics -------------------------------------------------------------
    def post(self, body: dict) -> tuple:
        meta = body.get("metadata") or {}
        name = meta.get("name") or ""
        if not name:
            return 422, _status(422, "Invalid", f"{PLURAL}.{GROUP} is invalid: metadata.name: "
                                "Required value: name or generateName is required")
        if meta.get("resourceVersion"):
            return 500, _status(500, "InternalError", "resourceVersion should not be set on "
                                "objects to be created")
        with self.cond:
            if name in self.objects:
                return 409, _status(409, "AlreadyExists",
                                    f'{PLURAL}.{GROUP} "{name}" already exists')
            obj = copy.deepcopy(body)
            obj["metadata"] = dict(meta, uid=f"uid-{name}", generation=1,
                                   creationTimestamp="2024-01-01T00:00:00Z")
            obj["apiVersion"], obj["kind"] = f"{GROUP}/{VERSION}", "CalicoNodeStatus"
            if self.status_subresource:
                obj.pop("status", None)        # the main resource ignores status
            self.objects[name] = obj
            return 201, self._push("ADDED", obj, None)

    def remove(self, name: str, body: dict) -> tuple:
        want = ((body or {}).get("preconditions") or {}).get("resourceVersion")
        with self.cond:
            obj = self.objects.get(name)
            if obj is None:
                return 404, _not_found(name)
            have = obj["metadata"]["resourceVersion"]
            if want and want != have:
                return 409, _status(409, "Conflict", "Operation cannot be fulfilled on "
                                    f'{PLURAL}.{GROUP} "{name}": Precondition failed: '
                                    f"ResourceVersion in precondition: {want}, "
                                    f"ResourceVersion in object meta: {have}")
            del self.objects[name]
            return 200, self._push("DELETED", obj, copy.deepcopy(obj))

    def bump(self, n: int = 1) -> None:
        """Writes to other resources: the revision moves, no event for us."""
        with self.cond:
            self.rv += n

    def bookmark(self) -> None:
        with self.cond:
            self.history.append((self.rv, "BOOKMARK", {
                "kind": "CalicoNodeStatus", "apiVersion": f"{GROUP}/{VERSION}",
                "metadata": {"resourceVersion": str(self.rv)}}, None))
            self.cond.notify_all()

    def compact(self) -> None:
        """Forget history: watches from an older resourceVersion get 410 Gone."""
        with self.cond:
            self.history.clear()
            self.oldest = self.rv

    def accepted_puts(self, name: str | None = None) -> list:
        return [p for p in self.puts if p[3] == 200 and (name is None or p[1] == name)]

    # -- PUT semantics -----------------------------------------------------------------------
    def replace(self, name: str, body: dict, status_only: bool) -> tuple:
        """(code, answer) for a PUT of ``body`` on the object (``status_only``: on its
        status subresource)."""
        for hook in self.before_put[:1]:
            self.before_put.pop(0)
            hook(name)
        with self.cond:
            obj = self.objects.get(name)
            if obj is None:
                return 404, _not_found(name)
            sent = (body.get("metadata") or {}).get("resourceVersion")
            if not sent:
                return 422, _status(422, "Invalid", f'{PLURAL}.{GROUP} "{name}" is invalid: '
                                    "metadata.resourceVersion: Invalid value: 0x0: must be "
                                    "specified for an update")
            if (body.get("metadata") or {}).get("name", name) != name:
                return 400, _status(400, "BadRequest", "the name of the object does not "
                                    "match the name on the URL")
            if sent != obj["metadata"]["resourceVersion"]:
                return 409, _status(409, "Conflict", f'Operation cannot be fulfilled on '
                                    f'{PLURAL}.{GROUP} "{name}": the object has been '
                                    "modified; please apply your changes to the latest "
                                    "version and try again")
            prev = copy.deepcopy(obj)
            if status_only:
                new = dict(obj, status=body.get("status"))
            else:
                meta = dict(obj["metadata"])
                for key in ("labels", "annotations"):
                    if (body.get("metadata") or {}).get(key) is not None:
                        meta[key] = body["metadata"][key]
                    else:
                        meta.pop(key, None)
                new = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                       "metadata": meta, "spec": body.get("spec")}
                if new["spec"] != obj.get("spec"):
                    meta["generation"] = meta.get("generation", 1) + 1
                status = obj.get("status") if self.status_subresource else body.get("status")
                if status is not None:
                    new["status"] = status
            if self.max_stored and len(json.dumps(new)) > self.max_stored:
                return 500, _status(500, "InternalError", "etcdserver: request is too large")
            self.objects[name] = new
            out = self._push("MODIFIED", new, prev)
        for hook in list(self.after_put):
            hook(name)
        return 200, out


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
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        api.requests.append((method, url.path, query, self.headers.get("Authorization")))
        rest = url.path[len(PREFIX):].strip("/").split("/") if url.path.startswith(PREFIX) else None
        if not api.crd_installed:
            rest = None
        return api, query, rest

    def _discovery(self, api: FakeKubeAPI) -> None:
        if not api.crd_installed:
            return self._send(404, _status(404, "NotFound", NOT_FOUND_PATH))
        verbs = ["delete", "deletecollection", "get", "list", "patch", "create", "update",
                 "watch"]
        resources = [{"name": PLURAL, "singularName": "caliconodestatus", "namespaced": False,
                      "kind": "CalicoNodeStatus", "verbs": verbs,
                      "storageVersionHash": "fake"}]
        if api.status_subresource:
            resources.append({"name": f"{PLURAL}/status", "singularName": "",
                              "namespaced": False, "kind": "CalicoNodeStatus",
                              "verbs": ["get", "patch", "update"]})
        self._send(200, {"kind": "APIResourceList", "apiVersion": "v1",
                         "groupVersion": f"{GROUP}/{VERSION}", "resources": resources})

    def _nodes(self, api: FakeKubeAPI, query: dict) -> None:
        with api.cond:
            items = [copy.deepcopy(api.nodes[k]) for k in sorted(api.nodes)]
            rv = str(api.rv)
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or 0) or len(items)
        meta = {"resourceVersion": rv}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        self._send(200, {"apiVersion": "v1", "kind": "NodeList", "metadata": meta,
                         "items": items[start:start + limit]})

    def _body(self) -> dict:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return json.loads(data) if data else {}

    def do_POST(self) -> None:
        api, query, rest = self._route("POST")
        body = self._body()
        if rest == [""]:
            code, answer = api.post(body)
        else:
            code, answer = 404, _status(404, "NotFound", NOT_FOUND_PATH)
        api.posts.append((urlsplit(self.path).path, body, code))
        self._send(code, answer)

    def do_DELETE(self) -> None:
        api, query, rest = self._route("DELETE")
        body = self._body()
        if rest and len(rest) == 1 and rest[0]:
            code, answer = api.remove(rest[0], body)
        else:
            code, answer = 404, _status(404, "NotFound", NOT_FOUND_PATH)
        api.deletes.append((urlsplit(self.path).path, body, code))
        self._send(code, answer)

    def do_GET(self) -> None:
        api, query, rest = self._route("GET")
        if urlsplit(self.path).path.rstrip("/") == DISCOVERY:
            return self._discovery(api)
        if urlsplit(self.path).path.rstrip("/") == NODES:
            return self._nodes(api, query)
        if rest == [""]:
            if query.get("watch") in ("true", "1"):
                return self._watch(api, query)
            selector = query.get("labelSelector") or ""
            with api.cond:
                items = [copy.deepcopy(api.objects[k]) for k in sorted(api.objects)
                         if selector_matches(selector, _labels(api.objects[k]))]
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
                return self._send(404, _not_found(rest[0]))
            return self._send(200, obj)
        if rest and len(rest) == 2 and rest[1] == "status" and api.status_subresource:
            with api.cond:
                obj = copy.deepcopy(api.objects.get(rest[0]))
            return self._send(200, obj) if obj else self._send(404, _not_found(rest[0]))
        self._send(404, _status(404, "NotFound", NOT_FOUND_PATH))

    def do_PUT(self) -> None:
        api, query, rest = self._route("PUT")
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status_only = bool(rest and len(rest) == 2 and rest[1] == "status")
        if not rest or not (len(rest) == 1 and rest[0] or status_only) \
                or (status_only and not api.status_subresource):
            # Calico's CRD has no status subresource: the path does not exist at all
            code, answer = 404, _status(404, "NotFound", NOT_FOUND_PATH)
        elif len(data) > api.max_body:
            code, answer = 413, _status(413, "RequestEntityTooLarge",
                                        f"Request entity too large: limit is {api.max_body}")
        else:
            code, answer = api.replace(rest[0], json.loads(data), status_only)
        name = rest[0] if rest else ""
        api.puts.append((urlsplit(self.path).path, name, json.loads(data or b"{}"), code))
        self._send(code, answer)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, api: FakeKubeAPI, query: dict) -> None:
        since = query.get("resourceVersion") or ""
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        selector = query.get("labelSelector") or ""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with api.cond:
            if since in ("", "0"):  # no version: every current object as ADDED first
                pending = [("ADDED", copy.deepcopy(o)) for o in api.objects.values()
                           if selector_matches(selector, _labels(o))]
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
                    pending = [e for e in (_filtered(h, selector) for h in api.history
                                           if h[0] > seen and (h[1] != "BOOKMARK" or bookmarks))
                               if e is not None]
                    left = deadline - time.monotonic()
                    if pending or left <= 0:
                        break
                    seen = max([seen] + [h[0] for h in api.history])
                    api.cond.wait(left)
                seen = max([seen] + [h[0] for h in api.history])
            if not pending:
                self.wfile.write(b"0\r\n\r\n")   # timeoutSeconds elapsed: a clean end
                return


def _filtered(entry: tuple, selector: str):
    """The watch event a selector-filtered watch sends for a history entry, or None."""
    _, kind, obj, prev = entry
    if kind == "BOOKMARK" or not selector:
        return kind, obj
    now = selector_matches(selector, _labels(obj)) and kind != "DELETED"
    before = prev is not None and selector_matches(selector, _labels(prev))
    if now and before:
        return kind, obj
    if now:
        return "ADDED", obj
    if before:
        return "DELETED", obj
    return None
