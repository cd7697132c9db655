"""CalicoNodeStatus in etcd v3, Calico's layout (readable and writable by calicoctl's etcd mode).

Each resource is the full v3 document (``apiVersion: projectcalico.org/v3``, ``kind``,
``metadata``, ``spec``, ``status``) as compact JSON at
``/calico/resources/v3/projectcalico.org/caliconodestatuses/<name>``. Its version is the key's
``mod_revision``; like calicoctl, ``metadata.resourceVersion`` is not stored in the value: it is
filled in from the revision when read and stripped when written. Calico's Node resources
(``/calico/resources/v3/projectcalico.org/nodes/<name>``, ``spec.bgp.ipv4Address`` …) are the
nodes the datastore knows.

Client: `etcd3gw <https://opendev.org/openstack/etcd3gw>`_ (OpenStack), a pure-HTTP client of
etcd's v3 JSON gateway (``/v3/``, served by etcd >= 3.4): requests-based, TLS client
certificates, no grpc/protobuf pins. Its KV calls are used as they are (``post`` for range, txn
and auth, which keeps the response header). Its watch is not: the stream reader runs in an
executor thread that swallows a dropped connection and a ``canceled``/``compact_revision``
answer, so the iterator blocks forever instead of failing; and it takes each HTTP chunk for a
whole JSON line. :class:`_WatchStream` reads the same ``/v3/watch`` stream over the client's
session (same TLS and auth) and reports those ends.

etcd's auth (``ETCD_USERNAME``/``ETCD_PASSWORD``) is not in etcd3gw either: the token from
``/v3/auth/authenticate`` goes in the ``Authorization`` header and is renewed once when etcd
calls it invalid (tokens expire after ``--auth-token-ttl``, 5 min idle by default).
"""
from __future__ import annotations

import base64
import collections
import json
import logging
import os
import queue
import socket
import threading
import uuid
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import msgspec
import requests
from requests.adapters import HTTPAdapter

import etcd3gw
from etcd3gw import exceptions as gwexc

from ..resource import timestamp
from . import (ConflictError, Event, NodeInfo, NotFoundError, Sink, SinkError, Stored,
               TooLargeError, WatchExpiredError, node_addresses)

__all__ = ("PREFIX", "NODES_PREFIX", "DEFAULT_ENDPOINTS", "ETCD_MAX_REQUEST_BYTES", "EtcdSink",
           "calico_node")

log = logging.getLogger("nodestatus.sinks.etcd")

PREFIX = "/calico/resources/v3/projectcalico.org/caliconodestatuses/"
#: Calico's Node resources: the nodes of an etcd-mode cluster.
NODES_PREFIX = "/calico/resources/v3/projectcalico.org/nodes/"
DEFAULT_ENDPOINTS = "http://127.0.0.1:2379"
#: etcd's default ``--max-request-bytes`` (1.5 MiB): a txn larger than this is refused.
ETCD_MAX_REQUEST_BYTES = 1536 * 1024
#: Room for the key (twice: compare and put), the txn framing and the raft header.
REQUEST_OVERHEAD = 8 * 1024
_PAGE = 500
_ENV_MAX_REQUEST = "NODESTATUS_ETCD_MAX_REQUEST_BYTES"


def _b64(data: Any) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def _unb64(data: Optional[str]) -> bytes:
    return base64.b64decode(data) if data else b""


def _prefix_end(prefix: bytes) -> bytes:
    """The range end of a prefix (last byte + 1, as etcd's clientv3.GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def _error_text(exc: gwexc.Etcd3Exception) -> str:
    """etcd's own message from the gateway's JSON error body, else whatever there is."""
    detail = getattr(exc, "detail_text", None) or ""
    try:
        body = json.loads(detail)
        if isinstance(body, dict):
            return str(body.get("message") or body.get("error") or detail)
    except ValueError:
        pass
    parts = [detail] + [str(a) for a in exc.args]
    return "; ".join(p for p in parts if p) or type(exc).__name__


def calico_node(name: str, doc: Any) -> NodeInfo:
    """A Calico v3 Node resource -> its BGP addresses (``spec.bgp.ipv4Address`` /
    ``ipv6Address``, else the first ``spec.addresses`` entry of each family)."""
    found = doc.get("spec") if isinstance(doc, dict) else None
    spec: dict = found if isinstance(found, dict) else {}
    bgp: dict = spec["bgp"] if isinstance(spec.get("bgp"), dict) else {}
    v4, v6 = node_addresses(bgp.get("ipv4Address"), bgp.get("ipv6Address"),
                            (e.get("address") for e in spec.get("addresses") or ()
                             if isinstance(e, dict)))
    return NodeInfo(name=name, ipv4=v4, ipv6=v6)


def _too_large(text: str) -> bool:
    return "request is too large" in text or "larger than max" in text


def _invalid_token(text: str) -> bool:
    return "invalid auth token" in text or "user name is empty" in text


class _KeepAliveAdapter(HTTPAdapter):
    """TCP keepalive on every connection: a watch stream idle for hours still notices a peer
    that vanished without a FIN (about 60 s: 30 s idle + 3 probes 10 s apart)."""

    def init_poolmanager(self, *args, **kwargs):
        from urllib3.connection import HTTPConnection

        opts = list(HTTPConnection.default_socket_options)
        opts.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, name):
                opts.append((socket.IPPROTO_TCP, getattr(socket, name), value))
        kwargs["socket_options"] = opts
        super().init_poolmanager(*args, **kwargs)


class _WatchStream:
    """One ``/v3/watch`` HTTP stream read by a daemon thread into a queue.

    Queue items: ``("events", [event, ...])``, ``("error", exc)`` (exc a SinkError; the stream
    is over). ``position`` is the revision of the last event handed to the caller (or the
    ``since`` it was opened with); ``pending`` holds events of a response not yet handed out.
    """

    def __init__(self, session: requests.Session, url: str, create: dict,
                 connect_timeout: float, since: int, where: str) -> None:
        self.where = where
        self.position = since
        self.pending: Deque[dict] = collections.deque()
        self.queue: "queue.Queue[Tuple[str, Any]]" = queue.Queue()
        self.closed = False
        self.dead = False
        self._session = session   # its own: a stream never shares a pooled connection
        try:
            self._resp = session.post(url, json={"create_request": create}, stream=True,
                                      timeout=(connect_timeout, None))
        except BaseException:
            session.close()
            raise
        if self._resp.status_code != 200:
            text = self._resp.text
            self._resp.close()
            session.close()
            raise gwexc.Etcd3Exception(text, self._resp.reason)
        self._thread = threading.Thread(target=self._read, name="etcd-watch", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        try:
            for chunk in self._resp.iter_content(chunk_size=None):
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    line, buf = buf[:nl], buf[nl + 1:]
                    if line.strip() and not self._line(line):
                        return
            if not self.closed:
                self._fail(SinkError(f"etcd watch stream closed by {self.where}"))
        except Exception as exc:  # requests/urllib3 errors on a dropped connection
            if not self.closed:
                self._fail(SinkError(f"etcd watch on {self.where} lost: {exc}"))

    def _line(self, line: bytes) -> bool:
        """Handle one JSON message; False when the stream is over."""
        try:
            msg = json.loads(line)
        except ValueError:
            self._fail(SinkError(f"etcd watch on {self.where}: not JSON: {line[:200]!r}"))
            return False
        if "error" in msg:
            err = msg["error"]
            text = err.get("message") if isinstance(err, dict) else str(err)
            self._fail(SinkError(f"etcd watch on {self.where}: {text}"))
            return False
        result = msg.get("result") or {}
        if result.get("compact_revision") and result.get("canceled"):
            self._fail(WatchExpiredError(
                f"etcd watch from revision {self.position + 1} on {self.where}: compacted "
                f"up to revision {result['compact_revision']}: list again"))
            return False
        if result.get("canceled"):
            reason = result.get("cancel_reason") or "no reason given"
            self._fail(SinkError(f"etcd watch on {self.where} canceled: {reason}"))
            return False
        events = result.get("events")
        if events:
            self.queue.put(("events", events))
        return True

    def _fail(self, exc: SinkError) -> None:
        self.dead = True
        self.queue.put(("error", exc))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.dead = True
        resp = self._resp
        try:  # unblock the reader's recv(): shut the socket down under it
            fp = resp.raw._fp  # http.client.HTTPResponse
            sock = socket.socket(fileno=os.dup(fp.fileno()))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()
        except Exception:
            pass
        try:
            resp.close()
        except Exception:
            pass
        try:
            self._session.close()
        except Exception:
            pass


def _txn_revision(out: dict) -> Optional[int]:
    """The key's mod_revision from a failed txn's range answer (None: the key is absent)."""
    for resp in out.get("responses") or []:
        kvs = (resp.get("response_range") or {}).get("kvs") or []
        if kvs:
            return int(kvs[0].get("mod_revision", 0))
    return None


class EtcdSink(Sink):
    """CalicoNodeStatus resources in etcd v3 (see the module doc).

    Arguments default to calicoctl's environment variables: ``endpoints`` ←
    ``ETCD_ENDPOINTS`` (comma-separated URLs, default ``http://127.0.0.1:2379``; the next one is
    tried when one refuses connections), ``ca_cert_file`` ← ``ETCD_CA_CERT_FILE``,
    ``cert_file`` ← ``ETCD_CERT_FILE``, ``key_file`` ← ``ETCD_KEY_FILE``, ``username`` /
    ``password`` ← ``ETCD_USERNAME`` / ``ETCD_PASSWORD``. ``max_request_bytes`` is the server's
    ``--max-request-bytes`` (← ``NODESTATUS_ETCD_MAX_REQUEST_BYTES``, default etcd's 1.5 MiB);
    :attr:`max_bytes` is that less :data:`REQUEST_OVERHEAD`. ``timeout`` bounds every request
    except the watch stream, which only has a connect timeout and TCP keepalive.
    """

    def __init__(self, endpoints: "str | Sequence[str] | None" = None, *,
                 ca_cert_file: Optional[str] = None, cert_file: Optional[str] = None,
                 key_file: Optional[str] = None, username: Optional[str] = None,
                 password: Optional[str] = None, timeout: float = 10.0,
                 max_request_bytes: Optional[int] = None, prefix: str = PREFIX,
                 environ: Optional[Mapping[str, str]] = None) -> None:
        env = os.environ if environ is None else environ
        if endpoints is None:
            endpoints = env.get("ETCD_ENDPOINTS") or DEFAULT_ENDPOINTS
        if isinstance(endpoints, str):
            endpoints = endpoints.split(",")
        self.endpoints: List[str] = [e.strip().rstrip("/") for e in endpoints if e.strip()]
        if not self.endpoints:
            raise ValueError("no etcd endpoints")
        self.ca_cert_file = ca_cert_file or env.get("ETCD_CA_CERT_FILE") or None
        self.cert_file = cert_file or env.get("ETCD_CERT_FILE") or None
        self.key_file = key_file or env.get("ETCD_KEY_FILE") or None
        self.username = username or env.get("ETCD_USERNAME") or None
        self.password = password if password is not None else env.get("ETCD_PASSWORD", "")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("ETCD_CERT_FILE and ETCD_KEY_FILE go together")
        if max_request_bytes is None:
            max_request_bytes = int(env.get(_ENV_MAX_REQUEST) or ETCD_MAX_REQUEST_BYTES)
        self.max_request_bytes = int(max_request_bytes)
        self.max_bytes = self.max_request_bytes - REQUEST_OVERHEAD
        self.timeout = timeout
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._prefix_b = self.prefix.encode()
        self._range_end = _b64(_prefix_end(self._prefix_b))
        self._token: Optional[str] = None
        self._clients = [self._client(url) for url in self.endpoints]
        self._current = 0
        self._stream: Optional[_WatchStream] = None

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **overrides) -> "EtcdSink":
        """A sink configured from calicoctl's ``ETCD_*`` variables (``environ`` or the
        process environment); keyword arguments override them."""
        return cls(environ=environ, **overrides)

    # -- plumbing ----------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = requests.Session()
        adapter = _KeepAliveAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if self.ca_cert_file:
            session.verify = self.ca_cert_file
        if self.cert_file and self.key_file:
            session.cert = (self.cert_file, self.key_file)
        session.headers["Content-Type"] = "application/json"
        return session

    def _client(self, url: str) -> etcd3gw.Etcd3Client:
        parts = urlsplit(url if "://" in url else "http://" + url)
        scheme = parts.scheme or "http"
        port = parts.port or (2379 if scheme in ("http", "https") else 2379)
        return etcd3gw.Etcd3Client(host=parts.hostname or "127.0.0.1", port=port,
                                   protocol=scheme, timeout=self.timeout, api_path="/v3/",
                                   session=self._session())

    def _where(self, client: etcd3gw.Etcd3Client) -> str:
        return client.base_url

    def _authenticate(self, client: etcd3gw.Etcd3Client) -> None:
        client.session.headers.pop("Authorization", None)
        out = client.post(client.get_url("/auth/authenticate"),
                          json={"name": self.username, "password": self.password})
        self._token = out.get("token")
        if not self._token:
            raise SinkError(f"etcd {self._where(client)}: authentication as "
                            f"{self.username!r} returned no token")

    def _prepare(self, client: etcd3gw.Etcd3Client, renew: bool = False) -> None:
        if not self.username:
            return
        if renew or self._token is None:
            self._authenticate(client)
        assert self._token is not None                # _authenticate raises without one
        client.session.headers["Authorization"] = self._token

    def _call(self, what: str, fn: Callable[[etcd3gw.Etcd3Client], Any]) -> Any:
        """``fn(client)`` on the current endpoint, the next ones when it cannot be reached;
        etcd3gw's errors become SinkError / TooLargeError."""
        errors = []
        n = len(self._clients)
        start = self._current
        for i in range(n):
            idx = (start + i) % n
            client = self._clients[idx]
            where = self._where(client)
            renewed = False
            while True:
                try:
                    self._prepare(client)
                    out = fn(client)
                    self._current = idx
                    return out
                except gwexc.ConnectionFailedError as exc:
                    errors.append(f"{where}: {_error_text(exc)}")
                    break  # try the next endpoint
                except gwexc.ConnectionTimeoutError as exc:
                    raise SinkError(f"etcd {what} on {where} timed out after "
                                    f"{self.timeout}s: {_error_text(exc)}") from None
                except gwexc.Etcd3Exception as exc:
                    text = _error_text(exc)
                    if self.username and _invalid_token(text) and not renewed:
                        renewed = True
                        self._token = None
                        continue
                    if _too_large(text):
                        raise TooLargeError(f"etcd {what} on {where} refused: {text}") from None
                    raise SinkError(f"etcd {what} on {where} failed: {text}") from None
                except requests.RequestException as exc:
                    errors.append(f"{where}: {exc}")
                    break
        raise SinkError(f"etcd {what}: no endpoint reachable ({'; '.join(errors)})")

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _stored(self, kv: dict) -> Optional[Stored]:
        key = _unb64(kv.get("key")).decode("utf-8", "replace")
        name = key[len(self.prefix):]
        if not name or "/" in name:
            return None
        version = str(int(kv.get("mod_revision", 0)))
        value = _unb64(kv.get("value"))
        try:
            raw = json.loads(value)
        except ValueError as exc:
            log.warning("etcd key %s: value is not JSON (%s); passed on as an empty document",
                        key, exc)
            raw = {}
        if not isinstance(raw, dict):
            log.warning("etcd key %s: value is not a JSON object; passed on as an empty "
                        "document", key)
            raw = {}
        meta = raw.get("metadata")
        if isinstance(meta, dict):
            meta["resourceVersion"] = version
        return Stored(name=name, version=version, raw=raw)

    # -- Sink --------------------------------------------------------------------------------
    def _range(self, what: str, prefix: bytes) -> Tuple[List[dict], int]:
        """Every key under ``prefix`` at one revision, paged; (kvs, revision)."""
        found: List[dict] = []
        revision: Optional[int] = None
        key, end = _b64(prefix), _b64(_prefix_end(prefix))
        while True:
            body: Dict[str, Any] = {"key": key, "range_end": end, "limit": _PAGE}
            if revision is not None:
                body["revision"] = revision
            out = self._call(what, lambda c: c.post(c.get_url("/kv/range"), json=body))
            if revision is None:
                revision = int(out["header"]["revision"])
            kvs = out.get("kvs") or []
            found.extend(kvs)
            if not out.get("more") or not kvs:
                break
            key = _b64(_unb64(kvs[-1]["key"]) + b"\0")
        return found, revision

    def list(self) -> Tuple[List[Stored], str]:
        kvs, revision = self._range("list", self._prefix_b)
        items = [s for s in (self._stored(kv) for kv in kvs) if s is not None]
        return items, str(revision)

    def list_nodes(self) -> List[NodeInfo]:
        """Calico's Node resources (calico-node creates one per node in etcd mode)."""
        kvs, _ = self._range("list nodes", NODES_PREFIX.encode())
        nodes = []
        for kv in kvs:
            name = _unb64(kv.get("key")).decode("utf-8", "replace")[len(NODES_PREFIX):]
            if not name or "/" in name:
                continue
            try:
                doc = json.loads(_unb64(kv.get("value")))
            except ValueError:
                doc = {}
            nodes.append(calico_node(name, doc))
        return nodes

    def get(self, name: str) -> Stored:
        body = {"key": _b64(self._key(name))}
        out = self._call("get " + name,
                         lambda c: c.post(c.get_url("/kv/range"), json=body))
        kvs = out.get("kvs") or []
        if not kvs:
            raise NotFoundError(f"CalicoNodeStatus {name!r} not found in etcd "
                                f"({self._key(name)})")
        stored = self._stored(kvs[0])
        assert stored is not None
        return stored

    def write_status(self, stored: Stored, status: Any) -> Stored:
        if not isinstance(status, dict):
            status = msgspec.to_builtins(status)
        return self._put(stored.name, dict(stored.raw, status=status), stored.version,
                         "status write")

    def replace(self, stored: Stored, doc: dict) -> Stored:
        return self._put(stored.name, doc, stored.version, "replace")

    def create(self, doc: dict) -> Stored:
        """Create as calicoctl does: ``uid`` and ``creationTimestamp`` set when absent (the
        Kubernetes apiserver sets them there; in etcd the client does)."""
        name = str((doc.get("metadata") or {}).get("name") or "")
        if not name or "/" in name:
            raise SinkError(f"etcd create: not a resource name: {name!r}")
        meta = dict(doc.get("metadata") or {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", timestamp())
        return self._put(name, dict(doc, metadata=meta), None, "create")

    def _put(self, name: str, doc: dict, version: Optional[str], what: str) -> Stored:
        """Put ``doc`` at ``name``'s key if the key is still at ``version`` (None: only if
        it does not exist)."""
        meta = doc.get("metadata")
        if isinstance(meta, dict) and "resourceVersion" in meta:
            doc = dict(doc, metadata={k: v for k, v in meta.items()
                                      if k != "resourceVersion"})  # calicoctl keeps it out
        value = msgspec.json.encode(doc)
        if len(value) > self.max_request_bytes:
            raise TooLargeError(f"CalicoNodeStatus {name!r}: {len(value)} bytes exceed "
                                f"etcd's request limit ({self.max_request_bytes} bytes, "
                                f"--max-request-bytes); not sent")
        bkey = _b64(self._key(name))
        compare = {"key": bkey, "result": "EQUAL", "target": "MOD",
                   "mod_revision": int(version)} if version is not None else \
            {"key": bkey, "result": "EQUAL", "target": "CREATE", "create_revision": 0}
        txn = {
            "compare": [compare],
            "success": [{"request_put": {"key": bkey, "value": _b64(value)}}],
            "failure": [{"request_range": {"key": bkey, "keys_only": True}}],
        }
        try:
            out = self._call(f"{what} of {name} ({len(value)} bytes)",
                             lambda c: c.transaction(txn))
        except TooLargeError as exc:
            raise TooLargeError(f"{exc} (limit assumed {self.max_request_bytes} bytes)") \
                from None
        if not out.get("succeeded"):
            now = _txn_revision(out)
            if version is None:
                raise ConflictError(f"CalicoNodeStatus {name!r} already exists (revision "
                                    f"{now})")
            raise ConflictError(f"CalicoNodeStatus {name!r} changed since revision {version} "
                                f"({'deleted' if now is None else f'now at revision {now}'}"
                                "): read it again")
        new_version = str(int(out["header"]["revision"]))
        if isinstance(doc.get("metadata"), dict):
            doc = dict(doc, metadata=dict(doc["metadata"], resourceVersion=new_version))
        return Stored(name=name, version=new_version, raw=doc)

    def delete(self, stored: Stored) -> None:
        bkey = _b64(self._key(stored.name))
        txn = {
            "compare": [{"key": bkey, "result": "EQUAL", "target": "MOD",
                         "mod_revision": int(stored.version)}],
            "success": [{"request_delete_range": {"key": bkey}}],
            "failure": [{"request_range": {"key": bkey, "keys_only": True}}],
        }
        out = self._call(f"delete of {stored.name}", lambda c: c.transaction(txn))
        if not out.get("succeeded"):
            now = _txn_revision(out)
            if now is None:
                raise NotFoundError(f"CalicoNodeStatus {stored.name!r} not found in etcd "
                                    f"({self._key(stored.name)})")
            raise ConflictError(f"CalicoNodeStatus {stored.name!r} changed since revision "
                                f"{stored.version} (now at revision {now}): not deleted")

    def watch(self, since: str, timeout: Optional[float] = None) -> Iterator[Event]:
        """Events after revision ``since`` (ADDED when the key was created by the event,
        MODIFIED, DELETED), in revision order. Returns when ``timeout`` seconds pass without an
        event; the stream stays open and a later ``watch(last_event.version)`` (or the same
        ``since`` when nothing came) continues on it without a new request. Raises
        WatchExpiredError when ``since`` was compacted, SinkError when the stream drops."""
        since_rev = int(since)
        stream = self._stream
        if stream is None or stream.dead or stream.position != since_rev:
            self._close_stream()
            stream = self._stream = self._open_stream(since_rev)
        renewed = False
        while True:
            if not stream.pending:
                try:
                    kind, item = stream.queue.get(timeout=timeout)
                except queue.Empty:
                    return
                if kind == "error":
                    self._close_stream()
                    if self.username and not renewed and _invalid_token(str(item)):
                        renewed = True        # token expired: log in again, same revision
                        self._token = None
                        stream = self._stream = self._open_stream(stream.position)
                        continue
                    raise item
                stream.pending.extend(item)
                continue
            ev = stream.pending.popleft()
            event = self._event(ev)
            stream.position = int(event.version) if event else stream.position
            if event is not None:
                yield event

    def _event(self, ev: dict) -> Optional[Event]:
        kv = ev.get("kv") or {}
        version = str(int(kv.get("mod_revision", 0)))
        key = _unb64(kv.get("key")).decode("utf-8", "replace")
        name = key[len(self.prefix):]
        if not key.startswith(self.prefix) or not name or "/" in name:
            return None
        if ev.get("type") == "DELETE":
            return Event(type="DELETED", name=name, version=version)
        stored = self._stored(kv)
        created = int(kv.get("create_revision", 0)) == int(kv.get("mod_revision", 0))
        return Event(type="ADDED" if created else "MODIFIED", name=name, version=version,
                     stored=stored)

    def _open_stream(self, since_rev: int) -> _WatchStream:
        create = {"key": _b64(self._prefix_b), "range_end": self._range_end,
                  "start_revision": since_rev + 1}

        def open_(client: etcd3gw.Etcd3Client) -> _WatchStream:
            session = self._session()
            token = client.session.headers.get("Authorization")
            if token:
                session.headers["Authorization"] = token
            try:
                return _WatchStream(session, client.get_url("/watch"), create,
                                    self.timeout, since_rev, self._where(client))
            except requests.exceptions.ConnectTimeout as exc:
                raise gwexc.ConnectionFailedError(str(exc)) from None
            except requests.exceptions.ConnectionError as exc:
                raise gwexc.ConnectionFailedError(str(exc)) from None

        return self._call(f"watch from revision {since_rev + 1}", open_)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def close(self) -> None:
        self._close_stream()
        for client in self._clients:
            try:
                client.session.close()
            except Exception:
                pass
