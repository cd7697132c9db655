"""Kubernetes datastore: the ``caliconodestatuses.crd.projectcalico.org/v1`` CRD
(cluster-scoped), read with list + watch and written through its ``status`` subresource with
the resourceVersion read (optimistic concurrency), using the official ``kubernetes`` client.

Versions are Kubernetes resourceVersions: opaque strings, compared only for equality.
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from typing import Iterator, List, Optional, Tuple

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes import watch as kwatch
from kubernetes.client.exceptions import ApiException

from . import (ConflictError, Event, NotFoundError, Sink, SinkError, Stored, TooLargeError,
               WatchExpiredError)

__all__ = ("KubeSink", "GROUP", "VERSION", "PLURAL", "API_VERSION")

GROUP = "crd.projectcalico.org"
VERSION = "v1"
PLURAL = "caliconodestatuses"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "CalicoNodeStatus"
_EVENTS = ("ADDED", "MODIFIED", "DELETED")


def _stored(obj: dict) -> Stored:
    obj.setdefault("apiVersion", API_VERSION)
    obj.setdefault("kind", KIND)
    meta = obj.get("metadata") or {}
    return Stored(name=meta.get("name", ""), version=str(meta.get("resourceVersion", "")),
                  raw=obj)


def _api_error(exc: ApiException, what: str) -> SinkError:
    """The SinkError subclass for an HTTP error from the apiserver."""
    code = exc.status
    message = exc.reason or ""
    try:
        message = json.loads(exc.body).get("message") or message
    except Exception:
        pass
    text = f"{what}: HTTP {code} {message}".strip()
    low = f"{exc.reason} {exc.body}".lower()
    if code == 409:
        return ConflictError(text)
    if code == 413 or "too large" in low:
        return TooLargeError(text)
    if code == 404:
        return NotFoundError(text)
    if code == 410 or "too old resource version" in low:
        return WatchExpiredError(text)
    return SinkError(text)


# What the client raises when the connection fails (refused, reset, timed out, broken stream).
_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)


class KubeSink(Sink):
    """CalicoNodeStatus resources in a Kubernetes cluster.

    Configuration, first that applies: ``host`` (+ ``token``, or no auth) given explicitly;
    ``kubeconfig``/``context`` given explicitly; the pod's service account (in-cluster);
    ``$KUBECONFIG`` or ``~/.kube/config``.

    One watch request stays open across ``watch()`` calls (a daemon thread reads it; the
    apiserver ends it every ``watch_window`` seconds and the thread watches again from the
    last version, BOOKMARKs included), so the caller may poll with short timeouts without
    a request per call. :meth:`close`, from any thread, makes a blocked ``watch`` return.
    """

    #: etcd's default request limit is 1.5 MiB; the apiserver stores the whole object there.
    max_bytes: int = 1_500_000

    def __init__(self, *, host: Optional[str] = None, token: Optional[str] = None,
                 kubeconfig: Optional[str] = None, context: Optional[str] = None,
                 verify_ssl: bool = True, ca_file: Optional[str] = None,
                 connect_timeout: float = 10.0, request_timeout: float = 30.0,
                 watch_window: int = 300, page_size: int = 500,
                 max_bytes: Optional[int] = None) -> None:
        cfg = kclient.Configuration()
        try:
            if host:
                cfg.host = host.rstrip("/")
                if token:
                    cfg.api_key = {"authorization": f"Bearer {token}"}
                cfg.verify_ssl = verify_ssl
                if ca_file:
                    cfg.ssl_ca_cert = ca_file
            elif kubeconfig or context:
                kconfig.load_kube_config(config_file=kubeconfig, context=context,
                                         client_configuration=cfg, persist_config=False)
            else:
                try:
                    kconfig.load_incluster_config(client_configuration=cfg)
                except kconfig.ConfigException:
                    # $KUBECONFIG read now (the client reads it once, at import)
                    kconfig.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None,
                                             client_configuration=cfg, persist_config=False)
        except (kconfig.ConfigException, OSError, ValueError) as exc:
            raise SinkError(f"kubernetes: no usable configuration (in-cluster service "
                            f"account, KUBECONFIG or ~/.kube/config): {exc}") from None
        # Only connecting is retried here (twice, quickly); a request that reached the
        # server is never re-sent (a replayed status PUT would come back as a spurious
        # conflict). Everything else is the caller's retry with backoff.
        cfg.retries = urllib3.Retry(total=2, connect=2, read=0, status=0, redirect=0,
                                    other=0, backoff_factor=0.1)
        self.host = cfg.host
        self._client = kclient.ApiClient(cfg)
        self._api = kclient.CustomObjectsApi(self._client)
        self._timeouts = (connect_timeout, request_timeout)
        self.watch_window = max(1, int(watch_window))
        self.page_size = page_size
        if max_bytes is not None:
            self.max_bytes = max_bytes
        self._stream: Optional[_WatchStream] = None
        self._closed = False

    # -- reads ------------------------------------------------------------------------------
    def list(self) -> Tuple[List[Stored], str]:
        items: List[Stored] = []
        token, version = None, ""
        while True:
            kw = {"limit": self.page_size} if self.page_size else {}
            if token:
                kw["_continue"] = token
            try:
                page = self._api.list_cluster_custom_object(
                    GROUP, VERSION, PLURAL, _request_timeout=self._timeouts, **kw)
            except ApiException as exc:
                raise _api_error(exc, f"list {PLURAL}") from None
            except _NETWORK_ERRORS as exc:
                raise SinkError(f"list {PLURAL}: {self.host}: {exc}") from None
            meta = page.get("metadata") or {}
            version = version or str(meta.get("resourceVersion", ""))
            items.extend(_stored(obj) for obj in page.get("items") or ())
            token = meta.get("continue")
            if not token:
                break
        return items, version

    def get(self, name: str) -> Stored:
        try:
            obj = self._api.get_cluster_custom_object(GROUP, VERSION, PLURAL, name,
                                                      _request_timeout=self._timeouts)
        except ApiException as exc:
            raise _api_error(exc, f"get {PLURAL}/{name}") from None
        except _NETWORK_ERRORS as exc:
            raise SinkError(f"get {PLURAL}/{name}: {self.host}: {exc}") from None
        return _stored(obj)

    def watch(self, since: str, timeout: Optional[float] = None) -> Iterator[Event]:
        """Events after ``since``. Returns when ``timeout`` seconds pass without one; the
        stream stays open, and ``watch(last_event.version)`` (or the same ``since`` when
        nothing came) goes on reading it without a new request. Raises WatchExpiredError
        (410 Gone: list again) or SinkError (connection lost: the next call reconnects)."""
        stream = self._stream
        if stream is None or stream.position != since:
            self._close_stream()
            if self._closed:
                return
            stream = self._stream = _WatchStream(self, since)
        while True:
            try:
                kind, item = stream.queue.get(timeout=timeout)
            except queue.Empty:
                return
            if kind == "closed":
                return
            if kind == "error":
                self._close_stream()
                if self._closed:
                    return
                raise item
            stream.position = item.version   # before the yield: the caller may stop here
            yield item

    @property
    def last_version(self) -> str:
        """Where the open watch stream is (events and bookmarks): diagnostics only."""
        stream = self._stream
        return stream.resume if stream is not None else ""

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    # -- writes -----------------------------------------------------------------------------
    def write_status(self, stored: Stored, status: dict) -> Stored:
        body = dict(stored.raw)
        body["metadata"] = dict(body.get("metadata") or {}, resourceVersion=stored.version)
        body.setdefault("apiVersion", API_VERSION)
        body.setdefault("kind", KIND)
        body["status"] = status
        try:
            obj = self._api.replace_cluster_custom_object_status(
                GROUP, VERSION, PLURAL, stored.name, body, _request_timeout=self._timeouts)
        except ApiException as exc:
            raise _api_error(exc, f"update {PLURAL}/{stored.name}/status") from None
        except _NETWORK_ERRORS as exc:
            raise SinkError(f"update {PLURAL}/{stored.name}/status: {self.host}: {exc}") \
                from None
        return _stored(obj)

    def close(self) -> None:
        """Stop: a watch blocked in another thread returns quietly; later calls fail."""
        self._closed = True
        self._close_stream()
        try:
            self._client.close()
        except Exception:
            pass


class _WatchStream:
    """One watch request at a time, read by a daemon thread into ``queue``: ("event",
    Event), ("error", SinkError) as the last item, or ("closed", None). When the apiserver
    ends a request (``timeoutSeconds`` = the sink's ``watch_window``, or its own limit) the
    thread watches again from ``resume``: the last event's or BOOKMARK's version."""

    def __init__(self, sink: "KubeSink", since: str) -> None:
        self.sink = sink
        self.position = since     # the last version handed to the caller
        self.resume = since       # where a new request starts
        self.queue: "queue.Queue" = queue.Queue()
        self._stopped = False
        self._watch: Optional[kwatch.Watch] = None
        self._thread = threading.Thread(target=self._run, name="kube-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sink = self.sink
        window = sink.watch_window
        try:
            while not self._stopped:
                self._watch = w = kwatch.Watch()
                started = time.monotonic()
                for ev in w.stream(
                        sink._api.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                        resource_version=self.resume or None, timeout_seconds=window,
                        allow_watch_bookmarks=True,
                        # the read timeout only guards against a server that never ends it
                        _request_timeout=(sink._timeouts[0], window + sink._timeouts[1])):
                    if self._stopped:
                        return
                    kind, obj = ev.get("type"), ev.get("raw_object")
                    if not isinstance(obj, dict):
                        continue
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                    if kind in _EVENTS:
                        stored = _stored(obj)
                        self.queue.put(("event", Event(
                            type=kind, name=stored.name, version=rv,
                            stored=None if kind == "DELETED" else stored)))
                    if rv:                    # BOOKMARK: only the version moves
                        self.resume = rv
                if time.monotonic() - started < 0.5:   # never spin on a server that
                    time.sleep(0.5)                      # ends each request at once
        except ApiException as exc:
            self._fail(_api_error(exc, f"watch {PLURAL} from {self.resume!r}"))
        except _NETWORK_ERRORS as exc:
            self._fail(SinkError(f"watch {PLURAL}: {sink.host}: {exc}"))
        except Exception as exc:   # a bug must reach the caller, not kill the thread quietly
            self._fail(SinkError(f"watch {PLURAL}: {type(exc).__name__}: {exc}"))

    def _fail(self, exc: SinkError) -> None:
        if not self._stopped:
            self.queue.put(("error", exc))

    def close(self) -> None:
        self._stopped = True
        self.queue.put(("closed", None))
        w = self._watch
        if w is not None:
            w.stop()   # recent clients also shut the stream's socket down
            resp = getattr(w, "_resp", None)
            sock = getattr(getattr(resp, "connection", None), "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(2)
                except OSError:
                    pass
