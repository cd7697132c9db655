"""Kubernetes datastore: the ``caliconodestatuses.crd.projectcalico.org/v1`` CRD
(cluster-scoped), read with list + watch and written through its ``status`` subresource with
the resourceVersion read (optimistic concurrency), using the official ``kubernetes`` client.

Versions are Kubernetes resourceVersions: opaque strings, compared only for equality.
"""
from __future__ import annotations

import json
import math
import os
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

    ``watch(since, timeout)`` asks the apiserver to end the stream after ``timeout`` seconds
    (``timeoutSeconds``, whole seconds, at least 1) and returns then; with ``timeout=None``
    it re-watches every ``watch_window`` seconds and never returns on its own. It requests
    bookmarks: they yield nothing but advance :attr:`last_version`, the version the next
    watch should start from. :meth:`close` (from any thread or a signal handler) makes a
    blocked ``watch`` return quietly.
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
        # Connection failures are retried by the caller with backoff, never re-sent here
        # (a replayed status PUT would come back as a spurious conflict).
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
        #: The version the next watch should resume from: advanced by every event and by
        #: BOOKMARKs (which are not yielded), set by list().
        self.last_version: str = ""
        self._watches: set = set()
        self._lock = threading.Lock()
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
        self.last_version = version
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
        deadline = None if timeout is None else time.monotonic() + timeout
        self.last_version = version = since
        while not self._closed:
            if deadline is None:
                window = self.watch_window
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                window = max(1, math.ceil(left))
            w = kwatch.Watch()
            with self._lock:
                self._watches.add(w)
            started = time.monotonic()
            stream = None
            try:
                stream = w.stream(
                    self._api.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                    resource_version=version or None, timeout_seconds=window,
                    allow_watch_bookmarks=True,
                    # the read timeout only guards against a server that never ends the stream
                    _request_timeout=(self._timeouts[0], window + self._timeouts[1]))
                for ev in stream:
                    kind, obj = ev.get("type"), ev.get("raw_object")
                    if not isinstance(obj, dict):
                        continue
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                    if rv:
                        self.last_version = version = rv
                    if kind not in _EVENTS:   # BOOKMARK: only the version moves
                        continue
                    stored = _stored(obj)
                    yield Event(type=kind, name=stored.name, version=rv,
                                stored=None if kind == "DELETED" else stored)
            except ApiException as exc:
                if self._closed:
                    return
                raise _api_error(exc, f"watch {PLURAL} from {version!r}") from None
            except _NETWORK_ERRORS as exc:
                if self._closed:
                    return
                raise SinkError(f"watch {PLURAL}: {self.host}: {exc}") from None
            finally:
                if stream is not None:
                    stream.close()   # the caller may stop iterating: release the connection
                with self._lock:
                    self._watches.discard(w)
            # The server ended the stream (timeoutSeconds, or its own limit): go on from the
            # last version until the caller's timeout; never spin on a server that ends at once.
            if time.monotonic() - started < 0.5:
                time.sleep(0.5)

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
        """Stop: a watch blocked in another thread returns; later calls fail."""
        self._closed = True
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.stop()   # also shuts the stream's socket down in recent clients
            resp = getattr(w, "_resp", None)
            sock = getattr(getattr(resp, "connection", None), "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(2)
                except OSError:
                    pass
        try:
            self._client.close()
        except Exception:
            pass
