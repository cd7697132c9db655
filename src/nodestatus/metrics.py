"""Prometheus metrics: BIRD's state as last collected, the FIB check, and the agent itself.

A scrape never talks to BIRD. A collection thread asks BIRD every ``period`` seconds and
keeps a :class:`Sample`: states and counts, never a route. A scrape renders the last sample
with prometheus-client, so a slow or stuck BIRD shows as a growing
``nodestatus_collection_age_seconds``, never as a hung scrape. The FIB check, when asked
for, runs in a thread of its own on its own period (at 1M routes BIRD 1.6 needs minutes to
print its table). The agent's report rounds that ask BIRD for everything feed the same
sample, so with the agent the collection thread only asks when no report did lately.

Series are bounded by the node's configuration, never by its routes: 7 state series and
one age per BGP session, one up series and 3-4 route counters per protocol, one series per
(route type, source type) pair; the README has the table.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import (TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple)

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector

from .agent import AgentEvents
from .birdtime import seconds_between
from .errors import (ConflictError, NodeStatusError, NotFoundError, SinkError, TooLargeError,
                     WatchExpiredError)
from .listener import Response
from .status import FamilyData, agent_status, established, peer_of, session_state
from .structs import Protocol, RouteCounters, is_bird2

__all__ = ("Sample", "FamilySample", "FibSample", "sample", "Metrics", "AgentMetrics",
           "CollectionLoop", "FibLoop", "SESSION_STATES", "ALL_CLASSES")

if TYPE_CHECKING:
    from .fibcheck import FibFamilyReport, FibReport

log = logging.getLogger("nodestatus.metrics")

#: A collection asks for everything a status holds (routes included: counted, not kept).
ALL_CLASSES = ("Agent", "BGP", "Routes")
SESSION_STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established",
                  "Close")
ROUTE_COUNTERS = ("imported", "exported", "preferred", "filtered")
FIB_KINDS = ("missing", "extra", "mismatched", "shadowed")
REPORT_RESULTS = ("written", "unchanged", "failed")
FAILURE_REASONS = ("bird", "conflict", "datastore", "too_large", "gone")
#: Seconds: a BIRD query answers in milliseconds on a small node and in minutes at 1M
#: routes on BIRD 1.6.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 120.0, 300.0)
#: ``sourceType`` of a route no CalicoNodeStatus source type fits (OSPF, Pipe, …).
OTHER = "Other"


# --------------------------------------------------------------------------- samples


class PeerSample(msgspec.Struct, frozen=True, kw_only=True):
    protocol: str
    peer_ip: str
    #: Calico's peer type (NodeMesh, NodePeer, GlobalPeer); ``other`` for other BGP names.
    peer_type: str
    state: str
    up: bool
    #: Seconds since the last state change, at collection time (None: unreadable since).
    age: Optional[float]


class ProtocolSample(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    proto: str
    up: bool
    routes: Optional[RouteCounters]


class FamilySample(msgspec.Struct, frozen=True, kw_only=True):
    family: int
    up: bool
    version: str = ""
    router_id: str = ""
    last_reboot: Optional[float] = None            # epoch seconds
    last_reconfiguration: Optional[float] = None
    peers: Tuple[PeerSample, ...] = ()
    protocols: Tuple[ProtocolSample, ...] = ()
    #: ``{(FIB|RIB, sourceType): entries}`` as the CalicoNodeStatus lists them.
    routes: Tuple[Tuple[Tuple[str, str], int], ...] = ()
    sync_failed: int = 0


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    """One collection: what BIRD said, aggregated; ``wall`` is when (epoch seconds)."""

    wall: float
    families: Tuple[FamilySample, ...]


class FibSample(msgspec.Struct, frozen=True, kw_only=True):
    family: int
    missing: int
    extra: int
    mismatched: int
    shadowed: int
    in_sync: bool
    seconds: float
    wall: float


def _counters(p: Protocol, family: int) -> Tuple[bool, Optional[RouteCounters]]:
    """(whether the protocol serves ``family``, its route counters there). BIRD 2 counts
    per channel; a protocol with no channel (device) serves both families."""
    if not p.channels:
        return True, p.routes
    for c in p.channels:
        if c.name == f"ipv{family}":
            return True, c.routes
    return False, None


def _family_sample(data: FamilyData, wall: float) -> FamilySample:
    daemon = agent_status(data)
    if daemon.state != "Ready":
        return FamilySample(family=data.family, up=False)
    st = data.status
    now_text = (st.server_time if st else None) or ""

    def epoch(text: Optional[str]) -> Optional[float]:
        ago = seconds_between(text, now_text) if text else None
        return None if ago is None else wall - ago

    peers: List[PeerSample] = []
    protocols: List[ProtocolSample] = []
    bird2 = is_bird2(data.version or daemon.version or "")
    for p in data.protocols:
        serves, routes = _counters(p, data.family) if bird2 else (True, p.routes)
        if serves:
            protocols.append(ProtocolSample(name=p.name, proto=p.proto, up=p.state == "up",
                                            routes=routes))
        if p.proto != "BGP":
            continue
        calico = peer_of(p)
        peer_type, peer_ip = calico if calico else (
            "other", (p.bgp.neighbor_address or "").split("%", 1)[0] if p.bgp else "")
        peers.append(PeerSample(protocol=p.name, peer_ip=peer_ip, peer_type=peer_type,
                                state=session_state(p), up=established(p),
                                age=seconds_between(p.since, now_text) if p.since else None))
    counts = collections.Counter((r.type, r.learned_from.source_type or OTHER)
                                 for r in data.routes)
    return FamilySample(family=data.family, up=True, version=daemon.version,
                        router_id=daemon.router_id, last_reboot=epoch(daemon.last_boot_time),
                        last_reconfiguration=epoch(daemon.last_reconfiguration_time),
                        peers=tuple(peers), protocols=tuple(protocols),
                        routes=tuple(sorted(counts.items())), sync_failed=data.sync_failed)


def sample(v4: FamilyData, v6: FamilyData, wall: Optional[float] = None) -> Sample:
    """Aggregate one collection (``collect_live`` with every class) into a sample."""
    wall = time.time() if wall is None else wall
    return Sample(wall=wall, families=(_family_sample(v4, wall), _family_sample(v6, wall)))


# --------------------------------------------------------------------------- the registry


def _error_name(exc: BaseException) -> str:
    """A bounded label value for an error: its class name (ours are a closed set)."""
    return type(exc).__name__


class _StateCollector:
    """Renders the last sample, the FIB samples and the collection's age at scrape time."""

    def __init__(self, metrics: "Metrics") -> None:
        self.m = metrics

    def describe(self) -> List[Metric]:
        return []                     # families depend on the sample; no registration check

    def collect(self) -> Iterator[Metric]:
        m = self.m
        snap, fib = m.last, m.fib             # one reference each: never mutated
        now_wall = m.wall()
        age = GaugeMetricFamily(
            "nodestatus_collection_age_seconds",
            "Seconds since the last successful collection from BIRD (since start when there "
            "was none): grows while BIRD is stuck or slow")
        ok_at = m.collected_at
        age.add_metric([], max(0.0, m.clock() - (ok_at if ok_at is not None else m.started)))
        yield age
        period = GaugeMetricFamily("nodestatus_collection_period_seconds",
                                   "Seconds between collections from BIRD")
        period.add_metric([], m.period)
        yield period
        if snap is not None:
            last = GaugeMetricFamily("nodestatus_collection_last_success_timestamp_seconds",
                                     "When the last successful collection was taken")
            last.add_metric([], snap.wall)
            yield last
            yield from _bird_families(snap, now_wall)
        if fib:
            yield from _fib_families(fib)


def _bird_families(snap: Sample, now_wall: float) -> Iterator[Metric]:
    fam_label = ["ip_version"]
    up = GaugeMetricFamily("nodestatus_bird_up", "1 when the BIRD daemon of the family "
                           "answered `show status` (Ready), 0 when it cannot be reached",
                           labels=fam_label)
    info = InfoMetricFamily("nodestatus_bird", "BIRD's version and router ID",
                            labels=fam_label + ["version", "router_id"])
    boot = GaugeMetricFamily("nodestatus_bird_last_reboot_timestamp_seconds",
                             "When BIRD last started", labels=fam_label)
    reconf = GaugeMetricFamily("nodestatus_bird_last_reconfiguration_timestamp_seconds",
                               "When BIRD last read its configuration", labels=fam_label)
    peer_labels = fam_label + ["protocol", "peer_ip", "peer_type"]
    state = GaugeMetricFamily("nodestatus_bgp_session_state", "BGP session state: 1 for "
                              "the current state, 0 for the others",
                              labels=peer_labels + ["state"])
    since = GaugeMetricFamily("nodestatus_bgp_session_state_age_seconds",
                              "Seconds since the session's last state change",
                              labels=peer_labels)
    est = GaugeMetricFamily("nodestatus_bgp_peers_established",
                            "BGP sessions whose protocol is up", labels=fam_label)
    not_est = GaugeMetricFamily("nodestatus_bgp_peers_not_established",
                                "BGP sessions whose protocol is not up", labels=fam_label)
    proto_labels = fam_label + ["protocol", "proto"]
    proto_up = GaugeMetricFamily("nodestatus_protocol_up", "1 when the BIRD protocol is up",
                                 labels=proto_labels)
    proto_routes = GaugeMetricFamily(
        "nodestatus_protocol_routes", "Routes per protocol from `show protocols all`: "
        "imported, exported, preferred, filtered (only with `import keep filtered`)",
        labels=proto_labels + ["kind"])
    routes = GaugeMetricFamily(
        "nodestatus_routes", "Route entries as CalicoNodeStatus lists them (one per next "
        "hop), by type (FIB: BIRD's best route, installed) and sourceType",
        labels=fam_label + ["type", "source_type"])
    sync_failed = GaugeMetricFamily(
        "nodestatus_routes_sync_failed", "Routes BIRD marks `!`: its best route, which the "
        "kernel refused", labels=fam_label)
    for f in snap.families:
        fam = str(f.family)
        up.add_metric([fam], 1.0 if f.up else 0.0)
        if not f.up:
            continue
        info.add_metric([fam, f.version, f.router_id], {})
        if f.last_reboot is not None:
            boot.add_metric([fam], f.last_reboot)
        if f.last_reconfiguration is not None:
            reconf.add_metric([fam], f.last_reconfiguration)
        n_up = 0
        for p in f.peers:
            labels = [fam, p.protocol, p.peer_ip, p.peer_type]
            for s in SESSION_STATES:
                state.add_metric(labels + [s], 1.0 if p.state == s else 0.0)
            if p.age is not None:
                since.add_metric(labels, p.age + max(0.0, now_wall - snap.wall))
            n_up += p.up
        est.add_metric([fam], n_up)
        not_est.add_metric([fam], len(f.peers) - n_up)
        for pr in f.protocols:
            labels = [fam, pr.name, pr.proto]
            proto_up.add_metric(labels, 1.0 if pr.up else 0.0)
            if pr.routes is not None:
                for kind in ROUTE_COUNTERS:
                    value = getattr(pr.routes, kind)
                    if value is not None:
                        proto_routes.add_metric(labels + [kind], value)
        for (rtype, source), n in f.routes:
            routes.add_metric([fam, rtype, source], n)
        sync_failed.add_metric([fam], f.sync_failed)
    yield from (up, info, boot, reconf, state, since, est, not_est, proto_up, proto_routes,
                routes, sync_failed)


def _fib_families(fib: Dict[int, FibSample]) -> Iterator[Metric]:
    labels = ["ip_version"]
    drift = GaugeMetricFamily(
        "nodestatus_fib_drift_routes", "The last FIB check's differences between BIRD's "
        "exported routes and the kernel table: missing, extra (proto bird left behind), "
        "mismatched, shadowed (another protocol's route wins)", labels=labels + ["kind"])
    in_sync = GaugeMetricFamily("nodestatus_fib_in_sync", "1 when the last FIB check found "
                                "no difference and no `!` route", labels=labels)
    took = GaugeMetricFamily("nodestatus_fib_check_duration_seconds",
                             "How long the last FIB check took", labels=labels)
    when = GaugeMetricFamily("nodestatus_fib_check_timestamp_seconds",
                             "When the last FIB check ended", labels=labels)
    for fam in sorted(fib):
        f = fib[fam]
        for kind in FIB_KINDS:
            drift.add_metric([str(fam), kind], getattr(f, kind))
        in_sync.add_metric([str(fam)], 1.0 if f.in_sync else 0.0)
        took.add_metric([str(fam)], f.seconds)
        when.add_metric([str(fam)], f.wall)
    yield from (drift, in_sync, took, when)


class Metrics:
    """One registry (not prometheus-client's global one, so tests and embedders can hold
    several), the state scrapes read, and the ``/metrics`` handler.

    ``period`` is the collection period (exported, so alerts can compare the age with it);
    ``clock`` is monotonic seconds and ``wall`` epoch seconds (tests pass their own)."""

    def __init__(self, period: float, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, process: bool = True) -> None:
        self.period = period
        self.clock, self.wall = clock, wall
        self.started = clock()
        self.last: Optional[Sample] = None
        #: clock time of the last successful collection (None: never)
        self.collected_at: Optional[float] = None
        self.fib: Dict[int, FibSample] = {}
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.registry.register(_StateCollector(self))
        self.collection_duration = Histogram(
            "nodestatus_collection_duration_seconds", "How long collections from BIRD took "
            "(failed ones included)", buckets=DURATION_BUCKETS, registry=self.registry)
        self.collection_errors = Counter(
            "nodestatus_collection_errors", "Collections from BIRD that failed, by error",
            ["error"], registry=self.registry)
        self.fib_errors = Counter(
            "nodestatus_fib_check_errors", "FIB checks that failed, by error", ["error"],
            registry=self.registry)
        if process:
            ProcessCollector(registry=self.registry)

    # -- updates (collection threads, the agent) ---------------------------------------
    def collected(self, v4: FamilyData, v6: FamilyData, seconds: float) -> None:
        """A successful collection: it becomes what scrapes show."""
        snap = sample(v4, v6, self.wall())
        with self._lock:
            self.last = snap
            self.collected_at = self.clock()
        self.collection_duration.observe(seconds)

    def collection_failed(self, exc: BaseException, seconds: float) -> None:
        self.collection_duration.observe(seconds)
        self.collection_errors.labels(_error_name(exc)).inc()

    def fib_checked(self, f: "FibFamilyReport") -> None:
        """One family of a FIB check's report, checked now."""
        done = FibSample(family=f.family, missing=f.missing, extra=f.extra,
                         mismatched=f.mismatched, shadowed=f.shadowed, in_sync=f.in_sync,
                         seconds=f.seconds, wall=self.wall())
        with self._lock:
            self.fib = {**self.fib, f.family: done}        # a new dict: scrapes hold the old

    def fib_failed(self, exc: BaseException) -> None:
        self.fib_errors.labels(_error_name(exc)).inc()

    # -- scrapes ------------------------------------------------------------------------
    def render(self) -> bytes:
        """The Prometheus text exposition of everything (no BIRD query)."""
        return generate_latest(self.registry)

    def endpoint(self) -> Callable[[], Response]:
        """The listener's ``/metrics`` handler."""

        def handle() -> Response:
            return Response(body=self.render(), content_type=CONTENT_TYPE_LATEST)

        return handle


# --------------------------------------------------------------------------- the agent


def _error_kind(exc: SinkError) -> str:
    if isinstance(exc, ConflictError):
        return "conflict"
    if isinstance(exc, TooLargeError):
        return "too_large"
    if isinstance(exc, NotFoundError):
        return "not_found"
    if isinstance(exc, WatchExpiredError):
        return "expired"
    return "error"


class AgentMetrics(AgentEvents):
    """The agent's own series, counted from its events. A report round that asked BIRD for
    every class also becomes the sample scrapes show (one query serves both)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        reg = metrics.registry
        self.reports = Counter("nodestatus_agent_reports", "Resources reported: written, "
                               "unchanged (already stored) or failed", ["result"],
                               registry=reg)
        self.failures = Counter("nodestatus_agent_report_failures", "Resources not "
                                "reported, by reason", ["reason"], registry=reg)
        self.round_seconds = Histogram(
            "nodestatus_agent_report_duration_seconds", "Report rounds: one BIRD query and "
            "the writes of every resource due", buckets=DURATION_BUCKETS, registry=reg)
        self.bird_seconds = Histogram(
            "nodestatus_agent_bird_query_duration_seconds", "The report rounds' BIRD "
            "queries (failed ones included)", buckets=DURATION_BUCKETS, registry=reg)
        self.last_report = Gauge("nodestatus_agent_last_report_timestamp_seconds",
                                 "When a resource was last reported", registry=reg)
        self.datastore_errors = Counter(
            "nodestatus_agent_datastore_errors", "Datastore calls that failed, by operation "
            "(list, watch, get, write) and kind (conflict, too_large, not_found, expired, "
            "error)", ["operation", "kind"], registry=reg)
        self.conflicts = Counter("nodestatus_agent_conflicts_retried", "Writes that met a "
                                 "conflict and were re-read and tried again", registry=reg)
        self.resources = Gauge("nodestatus_agent_resources", "CalicoNodeStatus resources "
                               "this agent serves", registry=reg)
        for result in REPORT_RESULTS:          # every series exists from the start, at 0
            self.reports.labels(result)
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)

    def serve(self, agent) -> None:
        """Read the number of served resources from ``agent`` at scrape time."""
        self.resources.set_function(lambda: len(agent.reporters))

    def bird_queried(self, seconds: float, classes: Sequence[str],
                     answer: Optional[Tuple[FamilyData, FamilyData]]) -> None:
        self.bird_seconds.observe(seconds)
        if answer is not None and set(ALL_CLASSES) <= set(classes):
            self.metrics.collected(answer[0], answer[1], seconds)

    def round_done(self, seconds: float) -> None:
        self.round_seconds.observe(seconds)

    def reported(self, result: str) -> None:
        self.reports.labels(result).inc()
        self.last_report.set(self.metrics.wall())

    def report_failed(self, reason: str) -> None:
        self.reports.labels("failed").inc()
        self.failures.labels(reason).inc()

    def datastore_error(self, operation: str, error: SinkError) -> None:
        self.datastore_errors.labels(operation, _error_kind(error)).inc()

    def conflict_retried(self) -> None:
        self.conflicts.inc()


# --------------------------------------------------------------------------- collection


class _Loop:
    """A daemon thread running ``run_once`` whenever ``due_at()`` has passed."""

    name = "loop"

    def __init__(self, period: float, clock: Callable[[], float]) -> None:
        self.period = period
        self.clock = clock
        self.stop_event = threading.Event()
        self.attempted_at: Optional[float] = None
        self._thread: Optional[threading.Thread] = None

    def due_at(self) -> float:
        return -1.0 if self.attempted_at is None else self.attempted_at + self.period

    def run_once(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self.stop_event.is_set():
            wait = self.due_at() - self.clock()
            if wait > 0:
                self.stop_event.wait(min(wait, self.period))
                continue
            self.attempted_at = self.clock()
            try:
                self.run_once()
            except Exception:              # never let the thread die: log, try next period
                log.exception("%s failed", self.name)

    def start(self) -> "_Loop":
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """Ask the thread to stop; a BIRD query in flight ends at its own timeout (the
        thread is a daemon: it never holds the process)."""
        self.stop_event.set()
        if self._thread is not None and timeout:
            self._thread.join(timeout)


class CollectionLoop(_Loop):
    """Asks BIRD (``collect``: every class, both families) every ``period`` seconds; a
    sample from elsewhere (an agent's report round) counts as a collection."""

    name = "metrics-collection"

    def __init__(self, metrics: Metrics,
                 collect: Callable[[], Tuple[FamilyData, FamilyData]]) -> None:
        super().__init__(metrics.period, metrics.clock)
        self.metrics = metrics
        self.collect = collect

    def due_at(self) -> float:
        last = max([t for t in (self.attempted_at, self.metrics.collected_at)
                    if t is not None], default=None)
        return -1.0 if last is None else last + self.period

    def run_once(self) -> None:
        started = time.perf_counter()
        try:
            v4, v6 = self.collect()
        except NodeStatusError as exc:
            self.metrics.collection_failed(exc, time.perf_counter() - started)
            log.warning("BIRD collection failed; scrapes show the last sample", extra={
                "fields": {"error": str(exc)}})
            return
        self.metrics.collected(v4, v6, time.perf_counter() - started)


class FibLoop(_Loop):
    """Runs ``check(family)`` (``fibcheck.check_fib`` for one family; None when that family
    has no daemon to ask) for each family every ``period`` seconds, in its own thread: a
    long check never delays a collection."""

    name = "metrics-fib-check"

    def __init__(self, metrics: Metrics, period: float, families: Iterable[int],
                 check: Callable[[int], Optional["FibReport"]]) -> None:
        super().__init__(period, metrics.clock)
        self.metrics = metrics
        self.families = tuple(families)
        self.check = check

    def run_once(self) -> None:
        for fam in self.families:
            if self.stop_event.is_set():
                return
            try:
                report = self.check(fam)
            except NodeStatusError as exc:
                self.metrics.fib_failed(exc)
                log.warning("FIB check failed", extra={"fields": {"family": fam,
                                                                  "error": str(exc)}})
                continue
            for part in report.families if report is not None else ():
                self.metrics.fib_checked(part)
