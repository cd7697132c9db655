"""Kubernetes datastore: the ``caliconodestatuses.crd.projectcalico.org/v1`` CRD
(cluster-scoped), read with list + watch, using the official ``kubernetes`` client.

How a status is written depends on the CRD in the cluster, found out from API discovery
(``GET /apis/crd.projectcalico.org/v1``) each time the resources are listed:

- Calico's own CRD (what Calico's manifests, Helm chart and operator install) has **no
  status subresource**: the whole object is replaced (``PUT .../caliconodestatuses/NAME``)
  as it was read, with only ``status`` changed and ``metadata.resourceVersion`` as the
  compare-and-swap, so spec and metadata are never changed.
- A CRD variant with a status subresource (``caliconodestatuses/status`` in discovery) is
  written through ``PUT .../NAME/status``, which cannot touch spec or metadata at all.

A 404 on a write means "resource gone" only when a GET confirms it; otherwise it is an
error that says so (and discovery runs again). With a label selector, the apiserver lists
and watches only the matching resources. Versions are Kubernetes resourceVersions.

The nodes are the Kubernetes Nodes; their BGP addresses are the annotations calico-node
writes (``projectcalico.org/IPv4Address``, ``…/IPv6Address``), else the InternalIPs.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes import watch as kwatch
from kubernetes.client.exceptions import ApiException

from . import (ConflictError, Event, NodeInfo, NotFoundError, Sink, SinkError, Stored,
               TooLargeError, WatchExpiredError, node_addresses)
from .selector import Selector

__all__ = ("KubeSink", "GROUP", "VERSION", "PLURAL", "API_VERSION", "kube_node")

log = logging.getLogger("nodestatus.sinks.kube")

GROUP = "crd.projectcalico.org"
VERSION = "v1"
PLURAL = "caliconodestatuses"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "CalicoNodeStatus"
_EVENTS = ("ADDED", "MODIFIED", "DELETED")
#: What calico-node writes on its Node (Kubernetes datastore): its BGP addresses.
CALICO_IPV4 = "projectcalico.org/IPv4Address"
CALICO_IPV6 = "projectcalico.org/IPv6Address"


def kube_node(obj: Any) -> NodeInfo:
    """A Kubernetes Node (JSON) -> its name and BGP addresses: calico-node's annotations,
    else the first InternalIP of each family."""
    meta = obj.get("metadata") or {}
    notes = meta.get("annotations") or {}
    v4, v6 = node_addresses(notes.get(CALICO_IPV4), notes.get(CALICO_IPV6),
                            (e.get("address") for e in (obj.get("status") or {}).get("addresses")
                             or () if isinstance(e, dict) and e.get("type") == "InternalIP"))
    return NodeInfo(name=str(meta.get("name") or ""), ipv4=v4, ipv6=v6)


def _stored(obj: Any) -> Stored:
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
        message = json.loads(exc.body or "").get("message") or message
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

    ``selector``: only resources whose labels match are listed and watched (the apiserver
    filters). ``field_manager`` names this writer in ``metadata.managedFields``.
    """

    #: etcd's default request limit is 1.5 MiB; the apiserver stores the whole object there.
    max_bytes: int = 1_500_000

    def __init__(self, *, host: Optional[str] = None, token: Optional[str] = None,
                 kubeconfig: Optional[str] = None, context: Optional[str] = None,
                 verify_ssl: bool = True, ca_file: Optional[str] = None,
                 connect_timeout: float = 10.0, request_timeout: float = 30.0,
                 watch_window: int = 300, page_size: int = 500,
                 max_bytes: Optional[int] = None, selector: Optional[Selector] = None,
                 field_manager: str = "nodestatus") -> None:
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
        self.selector = selector or Selector()
        self.field_manager = field_manager
        #: Whether the CRD has a status subresource (None until discovery answered).
        self.status_subresource: Optional[bool] = None

    def _selector_kw(self) -> dict:
        return {"label_selector": str(self.selector)} if self.selector else {}

    # -- discovery --------------------------------------------------------------------------
    def discover(self) -> bool:
        """Ask API discovery whether the CRD has a status subresource (and that it is
        installed at all); remembers and returns the answer."""
        where = f"GET /apis/{GROUP}/{VERSION}"
        try:
            found = self._api.get_api_resources(GROUP, VERSION,
                                                _request_timeout=self._timeouts)
        except ApiException as exc:
            if exc.status == 404:
                raise SinkError(f"{where}: 404: the CalicoNodeStatus CRD "
                                f"({PLURAL}.{GROUP}) is not installed") from None
            raise _api_error(exc, where) from None
        except _NETWORK_ERRORS as exc:
            raise SinkError(f"{where}: {self.host}: {exc}") from None
        names = {r.name for r in found.resources or ()}
        if PLURAL not in names:
            raise SinkError(f"{where}: the API group has no {PLURAL}: the CalicoNodeStatus "
                            f"CRD ({PLURAL}.{GROUP}) is not installed")
        has = f"{PLURAL}/status" in names
        if has != self.status_subresource:
            log.info("CalicoNodeStatus write path", extra={"fields": {
                "status_subresource": has,
                "writes": f"PUT {PLURAL}/NAME/status" if has else
                          f"PUT {PLURAL}/NAME (whole object, resourceVersion as the "
                          "compare-and-swap; Calico's CRD)"}})
        self.status_subresource = has
        return has

    # -- reads ------------------------------------------------------------------------------
    def list(self) -> Tuple[List[Stored], str]:
        """Every (selected) CalicoNodeStatus, after discovery (the CRD may have changed
        while we were away)."""
        self.discover()
        items: List[Stored] = []
        token, version = None, ""
        while True:
            kw = dict(self._selector_kw())
            if self.page_size:
                kw["limit"] = self.page_size
            if token:
                kw["_continue"] = token
            page: Any = self._call(f"list {PLURAL}", self._api.list_cluster_custom_object,
                                   GROUP, VERSION, PLURAL, **kw)
            meta = page.get("metadata") or {}
            version = version or str(meta.get("resourceVersion", ""))
            items.extend(_stored(obj) for obj in page.get("items") or ())
            token = meta.get("continue")
            if not token:
                break
        return items, version

    def get(self, name: str) -> Stored:
        return _stored(self._call(f"get {PLURAL}/{name}", self._api.get_cluster_custom_object,
                                  GROUP, VERSION, PLURAL, name))

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """One client call with the sink's timeouts; its failures as the project's errors:
        the API's by status code (``_api_error``), a lost connection as SinkError."""
        try:
            return fn(*args, _request_timeout=self._timeouts, **kw)
        except ApiException as exc:
            raise _api_error(exc, what) from None
        except _NETWORK_ERRORS as exc:
            raise SinkError(f"{what}: {self.host}: {exc}") from None

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
        """Replace ``status`` of the resource read as ``stored``, compare-and-swap on its
        resourceVersion, through the status subresource when the CRD has one and as the
        whole object (spec and metadata as read) when it does not."""
        if self.status_subresource is None:
            self.discover()
        body = dict(stored.raw)
        body["metadata"] = dict(body.get("metadata") or {}, resourceVersion=stored.version)
        body.setdefault("apiVersion", API_VERSION)
        body.setdefault("kind", KIND)
        body["status"] = status
        subresource = bool(self.status_subresource)
        if subresource:
            what, replace = (f"update {PLURAL}/{stored.name}/status",
                             self._api.replace_cluster_custom_object_status)
        else:
            what, replace = (f"update {PLURAL}/{stored.name}",
                             self._api.replace_cluster_custom_object)
        try:
            obj = replace(GROUP, VERSION, PLURAL, stored.name, body,
                          field_manager=self.field_manager, _request_timeout=self._timeouts)
        except ApiException as exc:
            error = _api_error(exc, what)
            if isinstance(error, NotFoundError):
                raise self._confirm_gone(stored.name, what, error, subresource) from None
            raise error from None
        except _NETWORK_ERRORS as exc:
            raise SinkError(f"{what}: {self.host}: {exc}") from None
        return _stored(obj)

    # -- whole resources and nodes (nodestatus cluster) ----------------------------------
    def list_nodes(self) -> List[NodeInfo]:
        """Every Kubernetes Node (paged), with calico-node's BGP addresses."""
        core = kclient.CoreV1Api(self._client)
        nodes: List[NodeInfo] = []
        token = None
        while True:
            kw: dict = {"limit": self.page_size} if self.page_size else {}
            if token:
                kw["_continue"] = token
            try:
                resp: Any = core.list_node(_request_timeout=self._timeouts,
                                           _preload_content=False, **kw)
                page = json.loads(resp.data)
            except ApiException as exc:
                raise _api_error(exc, "list nodes") from None
            except _NETWORK_ERRORS as exc:
                raise SinkError(f"list nodes: {self.host}: {exc}") from None
            except ValueError as exc:
                raise SinkError(f"list nodes: {self.host}: not JSON: {exc}") from None
            nodes.extend(kube_node(obj) for obj in page.get("items") or ()
                         if isinstance(obj, dict))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return nodes

    def create(self, doc: dict) -> Stored:
        name = str((doc.get("metadata") or {}).get("name") or "")
        body = dict(doc, apiVersion=API_VERSION, kind=KIND)
        return _stored(self._call(f"create {PLURAL}/{name}",
                                  self._api.create_cluster_custom_object, GROUP, VERSION,
                                  PLURAL, body, field_manager=self.field_manager))

    def replace(self, stored: Stored, doc: dict) -> Stored:
        """``PUT …/NAME`` with ``stored``'s resourceVersion: the whole object (a CRD with
        a status subresource keeps its status)."""
        body = dict(doc, apiVersion=API_VERSION, kind=KIND)
        body["metadata"] = dict(body.get("metadata") or {}, resourceVersion=stored.version)
        return _stored(self._call(f"update {PLURAL}/{stored.name}",
                                  self._api.replace_cluster_custom_object, GROUP, VERSION,
                                  PLURAL, stored.name, body, field_manager=self.field_manager))

    def delete(self, stored: Stored) -> None:
        """``DELETE …/NAME`` with ``preconditions.resourceVersion``: a resource changed
        since it was read is left alone (409)."""
        options = kclient.V1DeleteOptions(
            preconditions=kclient.V1Preconditions(resource_version=stored.version))
        self._call(f"delete {PLURAL}/{stored.name}", self._api.delete_cluster_custom_object,
                   GROUP, VERSION, PLURAL, stored.name, body=options)

    def _confirm_gone(self, name: str, what: str, error: NotFoundError,
                      subresource: bool) -> SinkError:
        """The error for a 404 on a write: NotFoundError only when a GET agrees."""
        try:
            self.get(name)
        except NotFoundError:
            return NotFoundError(f"{error} (a GET confirms: the resource is gone)")
        except SinkError as exc:
            return SinkError(f"{error}; and the GET to confirm it failed: {exc}")
        self.status_subresource = None          # find out again before the next write
        if subresource:
            return SinkError(f"{error}, but the resource exists: the CRD has no status "
                             f"subresource (any more?); API discovery runs again")
        return SinkError(f"{error}, but the resource exists (a GET finds it)")

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
                        allow_watch_bookmarks=True, **sink._selector_kw(),
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
