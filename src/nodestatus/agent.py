"""The reporter: keep every CalicoNodeStatus of this node filled, through a datastore sink.

One reporter per resource whose ``spec.node`` is this node. A new or changed spec reports at
once, then every ``updatePeriodSeconds`` (0: only on changes). Reporters that are due at the
same time share one BIRD query. A report is all or nothing, is written only when the status
differs from what is stored (``lastUpdated`` aside), and uses the version it read (a
conflict re-reads and retries). A status too large for the datastore keeps agent, BGP and
as many routes as fit, FIB first. Datastore outages are waited out with backoff, then the
agent lists again and carries on.
"""
from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import msgspec

from .errors import NodeStatusError
from .resource import CalicoNodeStatus, SpecError, validate
from .sinks import ConflictError, Event, NotFoundError, Sink, SinkError, Stored, TooLargeError, \
    WatchExpiredError
from .status import FamilyData, assemble_status

__all__ = ("Agent", "Reporter", "fit_status", "JsonLogFormatter")

log = logging.getLogger("nodestatus.agent")

Collect = Callable[[Iterable[str]], Tuple[FamilyData, FamilyData]]
NEVER = float("inf")
RETRY_SOON = 1.0
BACKOFF_MAX = 60.0


def _now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _older(a: str, b: str) -> bool:
    """Version ``a`` is known to be older than ``b`` (etcd revisions and Kubernetes
    resourceVersions are numbers in practice; anything else is never judged older)."""
    return a.isdigit() and b.isdigit() and int(a) < int(b)


def _without_timestamp(status: Optional[dict]) -> Optional[dict]:
    if not isinstance(status, dict):
        return status
    return {k: v for k, v in status.items() if k != "lastUpdated"}


class Reporter(msgspec.Struct, kw_only=True):
    """What the agent knows about one resource it serves."""

    name: str
    stored: Stored
    resource: CalicoNodeStatus
    next_due: float = 0.0
    failures: int = 0
    routes_left_out: int = 0

    @property
    def period(self) -> int:
        return self.resource.spec.update_period_seconds


def _size(obj) -> int:
    """JSON size with the default separators: an upper bound of what a backend sends."""
    return len(json.dumps(obj))


def _route_size(route: dict) -> int:
    return _size(route) + 2


def fit_status(raw: dict, status: dict, max_bytes: int) -> Tuple[dict, int]:
    """``status`` trimmed so the stored document fits ``max_bytes``: agent and BGP always,
    then routes FIB first (IPv4 before IPv6), then RIB, as many as fit. Returns the status
    and how many routes were left out."""
    doc = dict(raw, status=status)
    if _size(doc) <= max_bytes:
        return status, 0
    routes = status.get("routes") or {}
    order = []
    for want in ("FIB", "RIB"):
        for fam in ("routesV4", "routesV6"):
            order += [(fam, r) for r in routes.get(fam, []) if r.get("type", "RIB") == want]
    base = dict(status, routes={})
    budget = max_bytes - _size(dict(raw, status=base)) - 64
    kept = {"routesV4": [], "routesV6": []}
    used = 0
    n = 0
    for fam, r in order:
        size = _route_size(r)
        if used + size > budget:
            break
        used += size
        kept[fam].append(r)
        n += 1
    trimmed = dict(status, routes={k: v for k, v in kept.items() if v})
    return trimmed, len(order) - n


class Agent:
    """Serve every CalicoNodeStatus of ``node`` found in ``sink``.

    ``collect(classes) -> (v4, v6)`` asks BIRD (``sources.collect_live`` bound to the
    sockets); tests pass their own. ``clock`` is monotonic seconds.
    """

    def __init__(self, sink: Sink, node: str, collect: Collect, *,
                 clock: Callable[[], float] = time.monotonic,
                 watch_timeout: float = 1.0) -> None:
        self.sink = sink
        self.node = node
        self.collect = collect
        self.clock = clock
        self.watch_timeout = watch_timeout
        self.reporters: Dict[str, Reporter] = {}
        self.revision = "0"
        self.stop_event = threading.Event()
        self.rounds = 0
        self.writes = 0
        self.bird_queries = 0

    # -- resources ---------------------------------------------------------------------

    def _decode(self, stored: Stored) -> Optional[CalicoNodeStatus]:
        try:
            res = msgspec.convert(stored.raw, type=CalicoNodeStatus)
            return validate(res, source=f"caliconodestatus {stored.name}")
        except (msgspec.ValidationError, SpecError) as exc:
            log.warning("skipping invalid resource", extra={"fields": {
                "resource": stored.name, "error": str(exc)}})
            return None

    def _upsert(self, stored: Stored) -> None:
        res = self._decode(stored)
        old = self.reporters.get(stored.name)
        if res is None or res.spec.node != self.node:
            if old is not None:
                log.info("stopping reporter", extra={"fields": {
                    "resource": stored.name,
                    "reason": "invalid" if res is None else f"node is {res.spec.node}"}})
                del self.reporters[stored.name]
            return
        if old is None or msgspec.to_builtins(old.resource.spec) != msgspec.to_builtins(res.spec):
            log.info("reporting", extra={"fields": {
                "resource": stored.name, "classes": res.spec.classes,
                "period": res.spec.update_period_seconds,
                "change": "new" if old is None else "spec"}})
            self.reporters[stored.name] = Reporter(name=stored.name, stored=stored,
                                                   resource=res, next_due=self.clock())
        else:                                   # status-only change (often our own write)
            if _older(stored.version, old.stored.version):
                return                          # a late event: we already re-read newer
            old.stored = stored
            old.resource = res

    def _remove(self, name: str) -> None:
        if self.reporters.pop(name, None) is not None:
            log.info("stopping reporter", extra={"fields": {"resource": name,
                                                            "reason": "deleted"}})

    def resync(self) -> None:
        """List everything (start, or after an outage): add, update and drop reporters."""
        items, self.revision = self.sink.list()
        seen = set()
        for stored in items:
            seen.add(stored.name)
            self._upsert(stored)
        for name in list(self.reporters):
            if name not in seen:
                self._remove(name)

    def on_event(self, ev: Event) -> None:
        self.revision = ev.version or self.revision
        if ev.type == "DELETED":
            self._remove(ev.name)
        elif ev.stored is not None:
            self._upsert(ev.stored)

    # -- reporting ---------------------------------------------------------------------

    def due(self, force: bool = False) -> List[Reporter]:
        now = self.clock()
        return [r for r in self.reporters.values() if force or r.next_due <= now]

    def report_round(self, force: bool = False) -> int:
        """Report every due resource with one BIRD query; returns the number written."""
        due = self.due(force)
        if not due:
            return 0
        self.rounds += 1
        classes = sorted({c for r in due for c in r.resource.spec.classes})
        now = self.clock()
        try:
            v4, v6 = self.collect(classes)
            self.bird_queries += 1
        except NodeStatusError as exc:
            # all or nothing: no status is written from a failed query
            log.error("BIRD query failed; nothing written", extra={"fields": {
                "error": str(exc), "resources": [r.name for r in due]}})
            for r in due:
                r.failures += 1
                r.next_due = now + min(BACKOFF_MAX, RETRY_SOON * 2 ** r.failures, r.period or BACKOFF_MAX)
            return 0
        written = 0
        for r in due:
            written += self._write(r, v4, v6, now)
        return written

    def _write(self, r: Reporter, v4: FamilyData, v6: FamilyData, now: float) -> int:
        status = msgspec.to_builtins(assemble_status(r.resource.spec.classes, v4, v6))
        current = r.stored.raw.get("status")
        period_next = now + r.period if r.period > 0 else NEVER
        if _without_timestamp(status) == _without_timestamp(current):
            r.next_due, r.failures = period_next, 0
            return 0
        status = dict(lastUpdated=_now_rfc3339(), **status)
        status, left_out = fit_status(r.stored.raw, status, self.sink.max_bytes)
        if left_out and _without_timestamp(status) == _without_timestamp(current):
            # what is stored is already this status, trimmed the same way: nothing to write
            r.next_due, r.failures, r.routes_left_out = period_next, 0, left_out
            return 0
        try:
            r.stored = self.sink.write_status(r.stored, status)
        except ConflictError:
            r.failures += 1                     # not written this round (matters for --once)
            log.info("conflict: re-reading", extra={"fields": {"resource": r.name}})
            try:
                self._upsert(self.sink.get(r.name))
            except NotFoundError:
                self._remove(r.name)
                return 0
            except SinkError as exc:
                log.warning("re-read failed", extra={"fields": {"resource": r.name,
                                                                "error": str(exc)}})
            if r.name in self.reporters:
                self.reporters[r.name].next_due = now + RETRY_SOON
                self.reporters[r.name].failures = r.failures
            return 0
        except NotFoundError:
            self._remove(r.name)
            return 0
        except TooLargeError as exc:
            r.failures += 1
            if self.sink.max_bytes <= 4096:
                # even agent + BGP do not fit: wait for the next period or spec change
                log.error("status too large even without routes; not retrying before the "
                          "next period", extra={"fields": {"resource": r.name,
                                                           "error": str(exc)}})
                r.next_due = period_next
                return 0
            # our estimate was too generous: halve the size we aim for next time
            self.sink.max_bytes = max(4096, self.sink.max_bytes // 2)
            log.warning("status too large for the datastore", extra={"fields": {
                "resource": r.name, "error": str(exc), "max_bytes": self.sink.max_bytes}})
            r.next_due = now + RETRY_SOON
            return 0
        except SinkError as exc:
            r.failures += 1
            r.next_due = now + min(BACKOFF_MAX, RETRY_SOON * 2 ** r.failures)
            log.warning("write failed; will retry", extra={"fields": {
                "resource": r.name, "error": str(exc), "retry_in": r.next_due - now}})
            return 0
        if left_out:
            log.warning("status too large: routes left out", extra={"fields": {
                "resource": r.name, "left_out": left_out, "max_bytes": self.sink.max_bytes}})
        r.routes_left_out = left_out
        r.failures = 0
        r.next_due = period_next
        self.writes += 1
        log.info("status written", extra={"fields": {"resource": r.name,
                                                     "version": r.stored.version}})
        return 1

    # -- main loop ---------------------------------------------------------------------

    def stop(self) -> None:
        self.stop_event.set()

    def _sleep(self, seconds: float) -> None:
        self.stop_event.wait(seconds)

    def run(self, once: bool = False) -> bool:
        """Serve until ``stop()`` (or, with ``once``, report every resource one round and
        return whether every report succeeded)."""
        backoff = RETRY_SOON
        while not self.stop_event.is_set():
            try:
                self.resync()
                break
            except SinkError as exc:
                log.warning("datastore unavailable; retrying", extra={"fields": {
                    "error": str(exc), "retry_in": backoff}})
                if once:
                    raise
                self._sleep(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
        if once:
            self.report_round(force=True)
            return not any(r.failures for r in self.reporters.values())
        backoff = RETRY_SOON
        while not self.stop_event.is_set():
            self.report_round()
            nxt = min((r.next_due for r in self.reporters.values()), default=NEVER)
            timeout = max(0.0, min(self.watch_timeout, nxt - self.clock()))
            try:
                for ev in self.sink.watch(self.revision, timeout=timeout):
                    self.on_event(ev)
                    if self.stop_event.is_set() or self.due():
                        break
                backoff = RETRY_SOON
            except WatchExpiredError:
                self._relist()
            except SinkError as exc:
                log.warning("datastore watch failed; reconnecting", extra={"fields": {
                    "error": str(exc), "retry_in": backoff}})
                self._sleep(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
                self._relist()
        return True

    def _relist(self) -> None:
        try:
            self.resync()
        except SinkError as exc:
            log.warning("datastore still unavailable", extra={"fields": {"error": str(exc)}})


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
               .strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        out.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)
