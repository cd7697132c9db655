"""The reporter: keep every CalicoNodeStatus of this node filled, through a datastore sink.

One reporter per resource whose ``spec.node`` is this node (and whose labels match the
agent's selector). A new or changed spec reports at once, then every
``updatePeriodSeconds`` (0: only on changes). Reporters that are due at the same time
share one BIRD query. A report is all or nothing, is written only when the status differs
from what is stored (``lastUpdated`` aside), and uses the version it read: a conflict
re-reads, rebuilds and writes again, a bounded number of times within the round. An
unchanged status whose ``lastUpdated`` is half a period old is written again (a heartbeat:
``nodestatus cluster`` calls a status older than two periods stale). A status
too large for the datastore keeps agent, BGP and as many routes as fit, FIB first.
Datastore outages are waited out with jittered backoff, then the agent lists again.

Another writer of the same status (calico-node's own reporter, Calico >= 3.22) is
noticed: when the status keeps changing under us between our writes, the agent logs one
warning and writes that resource no more often than its period, without conflict retries.

What it does is told to an :class:`AgentEvents` (the metrics hook: ``metrics.py``), so this
module needs no metrics library.
"""
from __future__ import annotations

import datetime
import json
import logging
import random
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import msgspec

from .birdtime import same_instant
from .errors import (ConflictError, NodeStatusError, NotFoundError, SinkError, TooLargeError,
                     WatchExpiredError)
from .resource import TIMESTAMP_FORMAT, CalicoNodeStatus, SpecError, timestamp, validate
from .sinks import Event, Sink, Stored
from .sinks.selector import Selector
from .status import FamilyData, assemble_status

__all__ = ("Agent", "AgentEvents", "Reporter", "fit_status", "backoff_delay")

log = logging.getLogger("nodestatus.agent")

Collect = Callable[[Iterable[str]], Tuple[FamilyData, FamilyData]]
NEVER = float("inf")
RETRY_SOON = 1.0
BACKOFF_MAX = 60.0
#: Writes of one resource within a round when each meets a conflict (re-read, rebuild).
CONFLICT_ATTEMPTS = 3
#: Write gaps in a row in which another writer changed the status: then it is a fight.
FIGHT_AFTER = 3
#: Room kept in a trimmed document for ``metadata.resourceVersion``, whatever its length, so
#: the routes kept do not depend on the version's digits.
VERSION_ROOM = 32
LIKELY_OTHER_WRITER = ("calico-node's own CalicoNodeStatus reporter (Calico 3.22 and later "
                       "fills every CalicoNodeStatus of its node)")


def backoff_delay(failures: int, rng: random.Random, cap: float = BACKOFF_MAX) -> float:
    """Seconds to wait after ``failures`` failures in a row: exponential, capped, with
    "equal jitter" (between half and all of it), so that a thousand agents that lost the
    datastore together do not come back in lockstep."""
    full = min(cap, RETRY_SOON * 2 ** max(0, failures))
    return full / 2 + rng.uniform(0, full / 2)


def _rfc3339(wall: float) -> str:
    return timestamp(datetime.datetime.fromtimestamp(wall, datetime.timezone.utc))


def _older(a: str, b: str) -> bool:
    """Version ``a`` is known to be older than ``b`` (etcd revisions and Kubernetes
    resourceVersions are numbers in practice; anything else is never judged older)."""
    return a.isdigit() and b.isdigit() and int(a) < int(b)


def _updated_at(status: Any) -> Optional[float]:
    """The stored status's ``lastUpdated`` as epoch seconds (None: absent or unreadable)."""
    text = status.get("lastUpdated") if isinstance(status, dict) else None
    try:
        when = datetime.datetime.strptime(str(text), TIMESTAMP_FORMAT)
    except ValueError:
        return None
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()


def _without_timestamp(status: Any) -> Any:
    if not isinstance(status, dict):
        return status
    return {k: v for k, v in status.items() if k != "lastUpdated"}


_DAEMON_TIMES = ("lastBootTime", "lastReconfigurationTime")


def _steady_daemon_times(status: dict, stored: Any) -> dict:
    """``status`` with each daemon's boot / reconfiguration time taken from the ``stored``
    status when they are the same instant: BIRD 1.6's one-second jitter is no change to
    write."""
    agent = status.get("agent")
    old_agent = stored.get("agent") if isinstance(stored, dict) else None
    if not isinstance(agent, dict) or not isinstance(old_agent, dict):
        return status
    new_agent = dict(agent)
    for daemon, fields in agent.items():
        old = old_agent.get(daemon)
        if not isinstance(fields, dict) or not isinstance(old, dict):
            continue
        steady = dict(fields)
        for name in _DAEMON_TIMES:
            a, b = fields.get(name), old.get(name)
            if isinstance(a, str) and isinstance(b, str) and same_instant(a, b):
                steady[name] = b
        new_agent[daemon] = steady
    return dict(status, agent=new_agent)


class AgentEvents:
    """What the agent tells its observer as it works; every method here does nothing.
    ``metrics.AgentMetrics`` counts them."""

    def bird_queried(self, seconds: float, classes: Sequence[str],
                     answer: Optional[Tuple[FamilyData, FamilyData]]) -> None:
        """A report round asked BIRD (``answer`` None: the query failed)."""

    def round_done(self, seconds: float) -> None:
        """A report round ended: its BIRD query and every write of it."""

    def reported(self, result: str) -> None:
        """A resource was reported: ``written`` or ``unchanged`` (already stored)."""

    def report_failed(self, reason: str) -> None:
        """A resource was not reported: ``bird``, ``conflict``, ``datastore``,
        ``too_large`` or ``gone``."""

    def datastore_error(self, operation: str, error: SinkError) -> None:
        """A datastore call failed: ``list``, ``watch``, ``get`` or ``write``."""

    def conflict_retried(self) -> None:
        """A write met a conflict and is re-read and tried again in the same round."""


class Reporter(msgspec.Struct, kw_only=True):
    """What the agent knows about one resource it serves."""

    name: str
    stored: Stored
    resource: CalicoNodeStatus
    next_due: float = 0.0
    failures: int = 0
    routes_left_out: int = 0
    #: Wall-clock time of our last write (exact, unlike the whole seconds of lastUpdated).
    written_wall: Optional[float] = None
    #: Reported in its latest round: written, or already stored as it is.
    reported: bool = False
    # Another writer: the version our last write made and the status it held; the last
    # version looked at; whether the status changed under us since our last write; how many
    # write gaps in a row had that; and whether it is a fight (warned once, backed off).
    own_version: str = ""
    own_status: Any = None
    judged: str = ""
    interfered: bool = False
    fights: int = 0
    contended: bool = False

    @property
    def period(self) -> int:
        return self.resource.spec.update_period_seconds

    def next_period(self, now: float) -> float:
        return now + self.period if self.period > 0 else NEVER


def _size(obj) -> int:
    """JSON size with the default separators: an upper bound of what a backend sends."""
    return len(json.dumps(obj))


def _route_size(route: dict) -> int:
    return _size(route) + 2


def _without_version(raw: dict) -> dict:
    meta = raw.get("metadata")
    if isinstance(meta, dict) and "resourceVersion" in meta:
        return dict(raw, metadata={k: v for k, v in meta.items() if k != "resourceVersion"})
    return raw


def fit_status(raw: dict, status: dict, max_bytes: int) -> Tuple[dict, int]:
    """``status`` trimmed so the stored document fits ``max_bytes``: agent and BGP always,
    then routes FIB first (IPv4 before IPv6), then RIB, as many as fit. Returns the status
    and how many routes were left out. The same status and document give the same result
    whatever ``metadata.resourceVersion`` holds (a fixed room is kept for it)."""
    raw = _without_version(raw)
    if _size(dict(raw, status=status)) + VERSION_ROOM <= max_bytes:
        return status, 0
    routes = status.get("routes") or {}
    order = []
    for want in ("FIB", "RIB"):
        for fam in ("routesV4", "routesV6"):
            order += [(fam, r) for r in routes.get(fam, []) if r.get("type", "RIB") == want]
    base = dict(status, routes={})
    budget = max_bytes - _size(dict(raw, status=base)) - VERSION_ROOM - 64
    kept: Dict[str, list] = {"routesV4": [], "routesV6": []}
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
    """Serve every CalicoNodeStatus of ``node`` found in ``sink`` (and matching
    ``selector``).

    ``collect(classes) -> (v4, v6)`` asks BIRD (``sources.collect_live`` bound to the
    sockets); tests pass their own. ``clock`` is monotonic seconds; ``rng`` the jitter's
    randomness. With ``probe_every`` set, BIRD is asked for its status (a cheap ``show
    status``) when no report asked it for that long, so that :meth:`readiness` stays
    meaningful with nothing to report. :meth:`liveness` fails when the loop has not come
    round for ``stall_after`` seconds.
    """

    def __init__(self, sink: Sink, node: str, collect: Collect, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 watch_timeout: float = 1.0, selector: Optional[Selector] = None,
                 rng: Optional[random.Random] = None, probe_every: Optional[float] = None,
                 stall_after: float = 120.0, events: Optional[AgentEvents] = None) -> None:
        self.sink = sink
        self.node = node
        self.collect = collect
        self.clock = clock
        self.wall = wall
        self.watch_timeout = watch_timeout
        self.selector = selector or Selector()
        self.rng = rng or random.Random()
        self.probe_every = probe_every
        self.stall_after = stall_after
        self.events = events or AgentEvents()
        self.reporters: Dict[str, Reporter] = {}
        #: Resources of this node that cannot be served (invalid spec): never "reported".
        self.invalid: Dict[str, str] = {}
        self.revision = "0"
        self.stop_event = threading.Event()
        self.rounds = 0
        self.writes = 0
        self.bird_queries = 0
        # health: when the loop last came round (or will, when sleeping), and when the
        # datastore and BIRD last answered (clock seconds; None = never)
        self.heartbeat = clock()
        self.datastore_ok_at: Optional[float] = None
        self.bird_ok_at: Optional[float] = None
        self._bird_asked_at = -NEVER

    # -- resources ---------------------------------------------------------------------

    def _decode(self, stored: Stored) -> Optional[CalicoNodeStatus]:
        try:
            res = msgspec.convert(stored.raw, type=CalicoNodeStatus)
            return validate(res, source=f"caliconodestatus {stored.name}")
        except (msgspec.ValidationError, SpecError) as exc:
            log.warning("skipping invalid resource", extra={"fields": {
                "resource": stored.name, "error": str(exc)}})
            return None

    def _selected(self, stored: Stored) -> bool:
        meta = stored.raw.get("metadata")
        return self.selector.matches(meta.get("labels") if isinstance(meta, dict) else None)

    def _upsert(self, stored: Stored) -> None:
        old = self.reporters.get(stored.name)
        self.invalid.pop(stored.name, None)
        if not self._selected(stored):
            if old is not None:
                log.info("stopping reporter", extra={"fields": {
                    "resource": stored.name, "reason": "labels do not match --selector"}})
                del self.reporters[stored.name]
            return
        res = self._decode(stored)
        if res is None or res.spec.node != self.node:
            if res is None and self._claims_node(stored):
                self.invalid[stored.name] = self.node
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
            new = Reporter(name=stored.name, stored=stored, resource=res, next_due=self.clock())
            if old is not None:               # what we know about other writers stays
                for field in ("own_version", "own_status", "judged", "interfered", "fights",
                              "contended"):
                    setattr(new, field, getattr(old, field))
            self.reporters[stored.name] = new
            self._judge(new)
        else:                                   # status-only change (often our own write)
            if _older(stored.version, old.stored.version):
                return                          # a late event: we already re-read newer
            old.stored = stored
            old.resource = res
            self._judge(old)

    def _claims_node(self, stored: Stored) -> bool:
        spec = stored.raw.get("spec")
        return isinstance(spec, dict) and spec.get("node") == self.node

    def _remove(self, name: str) -> None:
        self.invalid.pop(name, None)
        if self.reporters.pop(name, None) is not None:
            log.info("stopping reporter", extra={"fields": {"resource": name,
                                                            "reason": "deleted"}})

    def resync(self) -> None:
        """List everything (start, or after an outage): add, update and drop reporters."""
        try:
            items, self.revision = self.sink.list()
        except SinkError as exc:
            self.events.datastore_error("list", exc)
            raise
        self.datastore_ok_at = self.clock()
        seen = set()
        for stored in items:
            seen.add(stored.name)
            self._upsert(stored)
        for name in list(self.reporters) + list(self.invalid):
            if name not in seen:
                self._remove(name)

    def on_event(self, ev: Event) -> None:
        self.revision = ev.version or self.revision
        if ev.type == "DELETED":
            self._remove(ev.name)
        elif ev.stored is not None:
            self._upsert(ev.stored)

    # -- another writer ----------------------------------------------------------------

    def _judge(self, r: Reporter) -> None:
        """Look once at each version of the resource we did not write ourselves: did
        someone else change the status since our last write?"""
        v = r.stored.version
        if not r.own_version or v == r.own_version or v == r.judged \
                or _older(v, r.own_version):
            return
        r.judged = v
        if _without_timestamp(r.stored.raw.get("status")) == r.own_status:
            return                              # spec or labels changed, our status kept
        if r.interfered:
            return                              # counted once per gap between our writes
        r.interfered = True
        r.fights += 1
        if r.fights >= FIGHT_AFTER and not r.contended:
            r.contended = True
            log.warning("another writer keeps changing this resource's status; writing it "
                        "only once per period from now on", extra={"fields": {
                            "resource": r.name, "likely_cause": LIKELY_OTHER_WRITER,
                            "period": r.period,
                            "hint": "run this agent only for its own resources "
                                    "(--selector) or turn the other reporter off"}})

    def _wrote(self, r: Reporter, status: dict) -> None:
        if not r.interfered:
            r.fights = 0
            if r.contended:
                r.contended = False
                log.info("no other writer seen since the last write", extra={"fields": {
                    "resource": r.name}})
        r.interfered = False
        r.own_version = r.judged = r.stored.version
        r.own_status = _without_timestamp(status)

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
        self._bird_asked_at = now
        started = time.perf_counter()
        try:
            v4, v6 = self.collect(classes)
            self.bird_queries += 1
        except NodeStatusError as exc:
            self.events.bird_queried(time.perf_counter() - started, classes, None)
            # all or nothing: no status is written from a failed query
            log.error("BIRD query failed; nothing written", extra={"fields": {
                "error": str(exc), "resources": [r.name for r in due]}})
            for r in due:
                r.failures += 1
                r.reported = False
                r.next_due = now + min(backoff_delay(r.failures, self.rng),
                                       r.period or BACKOFF_MAX)
                self.events.report_failed("bird")
            self.events.round_done(time.perf_counter() - started)
            return 0
        self.events.bird_queried(time.perf_counter() - started, classes, (v4, v6))
        self._bird_answered(v4, v6, now)
        written = 0
        for r in due:
            written += self._report(r, set(classes), v4, v6, now)
        self.events.round_done(time.perf_counter() - started)
        return written

    def _bird_answered(self, v4: FamilyData, v6: FamilyData, now: float) -> None:
        if v4.reachable or v6.reachable:
            self.bird_ok_at = now

    def _report(self, r: Reporter, asked: set, v4: FamilyData, v6: FamilyData,
                now: float) -> int:
        """Write one resource's status; a conflict re-reads, rebuilds and writes again (up
        to CONFLICT_ATTEMPTS writes), unless another writer keeps at it."""
        for attempt in range(CONFLICT_ATTEMPTS):
            if attempt:
                self.events.conflict_retried()
            outcome = self._write(r, v4, v6, now)
            if outcome in ("written", "unchanged"):
                self.events.reported(outcome)
            if outcome != "conflict":
                return 1 if outcome == "written" else 0
            log.info("conflict: re-reading", extra={"fields": {"resource": r.name}})
            fresh = self._reread(r.name)
            if fresh is None:
                return 0                                  # gone, or no longer ours
            r = fresh
            if not set(r.resource.spec.classes) <= asked:
                return 0          # a new spec asks BIRD for more: due now, next round
            if r.contended:
                break
        self.events.report_failed("conflict")
        r.failures += 1
        r.reported = False
        if r.contended:
            r.next_due = r.next_period(now)               # do not fight: its period
            log.info("write conflict left for the next period", extra={"fields": {
                "resource": r.name, "period": r.period}})
        else:
            r.next_due = now + backoff_delay(r.failures, self.rng)
            log.warning("write conflicts on every attempt; retrying later", extra={
                "fields": {"resource": r.name, "attempts": CONFLICT_ATTEMPTS,
                           "retry_in": round(r.next_due - now, 2)}})
        return 0

    def _reread(self, name: str) -> Optional[Reporter]:
        try:
            stored = self.sink.get(name)
        except NotFoundError:
            self._remove(name)
            return None
        except SinkError as exc:
            self.events.datastore_error("get", exc)
            self.events.report_failed("datastore")
            log.warning("re-read failed", extra={"fields": {"resource": name,
                                                            "error": str(exc)}})
            r = self.reporters.get(name)
            if r is not None:
                r.failures += 1
                r.reported = False
                r.next_due = self.clock() + backoff_delay(r.failures, self.rng)
            return None
        self.datastore_ok_at = self.clock()
        self._upsert(stored)
        return self.reporters.get(name)

    def _write(self, r: Reporter, v4: FamilyData, v6: FamilyData, now: float) -> str:
        """One attempt: "written", "unchanged", "conflict" or "failed"."""
        status = msgspec.to_builtins(assemble_status(r.resource.spec.classes, v4, v6))
        current = r.stored.raw.get("status")
        status = _steady_daemon_times(status, current)
        period_next = r.next_period(now)
        # a heartbeat: a round refreshes lastUpdated of a status unchanged for half a
        # period, so that a reporter that stopped shows as stale
        fresh = r.period == 0 or self._updated_within(r, current, r.period / 2)
        if fresh and _without_timestamp(status) == _without_timestamp(current):
            r.next_due, r.failures, r.reported = period_next, 0, True
            return "unchanged"
        stamp = self.wall()
        status = dict(lastUpdated=_rfc3339(stamp), **status)
        status, left_out = fit_status(r.stored.raw, status, self.sink.max_bytes)
        if fresh and left_out and _without_timestamp(status) == _without_timestamp(current):
            # what is stored is already this status, trimmed the same way: nothing to write
            r.next_due, r.failures, r.routes_left_out, r.reported = period_next, 0, \
                left_out, True
            return "unchanged"
        try:
            r.stored = self.sink.write_status(r.stored, status)
        except SinkError as exc:
            self.events.datastore_error("write", exc)
            return self._write_failed(r, exc, now, period_next)
        self.datastore_ok_at = self.clock()
        self._wrote(r, status)
        r.written_wall = stamp
        if left_out:
            log.warning("status too large: routes left out", extra={"fields": {
                "resource": r.name, "left_out": left_out, "max_bytes": self.sink.max_bytes}})
        r.routes_left_out = left_out
        r.failures = 0
        r.reported = True
        r.next_due = period_next
        self.writes += 1
        log.info("status written", extra={"fields": {"resource": r.name,
                                                     "version": r.stored.version}})
        return "written"

    def _updated_within(self, r: Reporter, current: Any, seconds: float) -> bool:
        """The stored status was updated less than ``seconds`` ago: by our last write (its
        exact time), else by its ``lastUpdated``; a time that cannot be read (another
        writer's) is not ours to refresh."""
        if r.written_wall is not None and r.stored.version == r.own_version:
            when: Optional[float] = r.written_wall
        else:
            when = _updated_at(current)
        return when is None or self.wall() - when < seconds

    def _write_failed(self, r: Reporter, exc: SinkError, now: float,
                      period_next: float) -> str:
        """After a failed write: "conflict" (the caller re-reads), else "failed" with the
        retry planned."""
        if isinstance(exc, ConflictError):
            return "conflict"
        if isinstance(exc, NotFoundError):
            self.events.report_failed("gone")
            self._remove(r.name)
            return "failed"
        if isinstance(exc, TooLargeError):
            self.events.report_failed("too_large")
            r.failures += 1
            r.reported = False
            if self.sink.max_bytes <= 4096:
                # even agent + BGP do not fit: wait for the next period or spec change
                log.error("status too large even without routes; not retrying before the "
                          "next period", extra={"fields": {"resource": r.name,
                                                           "error": str(exc)}})
                r.next_due = period_next
                return "failed"
            # our estimate was too generous: halve the size we aim for next time
            self.sink.max_bytes = max(4096, self.sink.max_bytes // 2)
            log.warning("status too large for the datastore", extra={"fields": {
                "resource": r.name, "error": str(exc), "max_bytes": self.sink.max_bytes}})
            r.next_due = now + RETRY_SOON
            return "failed"
        self.events.report_failed("datastore")
        r.failures += 1
        r.reported = False
        r.next_due = now + backoff_delay(r.failures, self.rng)
        log.warning("write failed; will retry", extra={"fields": {
            "resource": r.name, "error": str(exc), "retry_in": round(r.next_due - now, 2)}})
        return "failed"

    def unreported(self) -> List[str]:
        """Resources of this node whose latest round did not report them (sorted)."""
        return sorted([r.name for r in self.reporters.values() if not r.reported]
                      + list(self.invalid))

    # -- health ------------------------------------------------------------------------

    def liveness(self) -> Tuple[bool, dict]:
        """The loop came round within ``stall_after`` seconds (or is in a planned sleep)."""
        late = self.clock() - self.heartbeat
        return late <= self.stall_after, {"loop_late_seconds": round(max(0.0, late), 3),
                                          "stall_after": self.stall_after}

    def readiness(self) -> Tuple[bool, dict]:
        """The datastore and at least one BIRD socket answered within the readiness
        window (the longer of 3 probe periods and 30 s)."""
        now = self.clock()
        window = max(30.0, 3 * (self.probe_every or 10.0))

        def age(t: Optional[float]) -> Optional[float]:
            return None if t is None else round(now - t, 3)

        datastore, bird = age(self.datastore_ok_at), age(self.bird_ok_at)
        ok = datastore is not None and datastore <= window and bird is not None \
            and bird <= window
        return ok, {"datastore_answered_seconds_ago": datastore,
                    "bird_answered_seconds_ago": bird, "window": window,
                    "resources": len(self.reporters)}

    def _probe_bird(self) -> None:
        now = self.clock()
        if self.probe_every is None or now - self._bird_asked_at < self.probe_every:
            return
        self._bird_asked_at = now
        try:
            v4, v6 = self.collect(())          # `show status` only
        except NodeStatusError as exc:
            log.debug("BIRD probe failed", extra={"fields": {"error": str(exc)}})
            return
        self._bird_answered(v4, v6, now)

    # -- main loop ---------------------------------------------------------------------

    def stop(self) -> None:
        self.stop_event.set()

    def _sleep(self, seconds: float) -> None:
        self.heartbeat = self.clock() + seconds     # a planned pause is not a stall
        self.stop_event.wait(seconds)

    def run(self, once: bool = False) -> bool:
        """Serve until ``stop()``. With ``once``: report every resource in one round (a
        spec changed meanwhile gets a second round) and return whether every resource of
        this node was reported; a datastore that cannot be listed raises SinkError."""
        failures = 0
        while not self.stop_event.is_set():
            self.heartbeat = self.clock()
            try:
                self.resync()
                break
            except SinkError as exc:
                if once:
                    raise
                failures += 1
                delay = backoff_delay(failures, self.rng)
                log.warning("datastore unavailable; retrying", extra={"fields": {
                    "error": str(exc), "retry_in": round(delay, 2)}})
                self._sleep(delay)
        if once:
            self.report_round(force=True)
            for _ in range(2):
                if not self.due():
                    break
                self.report_round()
            missing = self.unreported()
            if missing:
                log.error("not every resource of this node was reported", extra={
                    "fields": {"resources": missing}})
            return not missing
        failures = 0
        while not self.stop_event.is_set():
            self.heartbeat = self.clock()
            self.report_round()
            self._probe_bird()
            nxt = min((r.next_due for r in self.reporters.values()), default=NEVER)
            timeout = max(0.0, min(self.watch_timeout, nxt - self.clock()))
            try:
                for ev in self.sink.watch(self.revision, timeout=timeout):
                    self.on_event(ev)
                    if self.stop_event.is_set() or self.due():
                        break
                self.datastore_ok_at = self.clock()
                failures = 0
            except WatchExpiredError as exc:
                self.events.datastore_error("watch", exc)
                self._relist()
            except SinkError as exc:
                self.events.datastore_error("watch", exc)
                failures += 1
                delay = backoff_delay(failures, self.rng)
                log.warning("datastore watch failed; reconnecting", extra={"fields": {
                    "error": str(exc), "retry_in": round(delay, 2)}})
                self._sleep(delay)
                self._relist()
        return True

    def _relist(self) -> None:
        try:
            self.resync()
        except SinkError as exc:
            log.warning("datastore still unavailable", extra={"fields": {"error": str(exc)}})
