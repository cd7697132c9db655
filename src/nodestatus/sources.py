"""Where a node's BIRD answers come from: live control sockets or captured replies.

Both produce ``status.FamilyData`` per address family. Route replies are streamed and
turned into CalicoNodeStatus entries as they arrive, so a 100k-route table is never held
as parsed records. A BIRD 2 daemon answers for both families and is asked once. Captures
are read once each, through :mod:`.inputs` (so a FIFO or ``<(…)`` works like a file), and a
status is built from every file given or not at all.

The FIB check's BIRD side is read here too (``fib_routes_live``, ``fib_routes_capture``).
"""
from __future__ import annotations

import logging
import os
import stat
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import msgspec

from .birdsock import BirdClient, find_socket
from .errors import BirdUnreachableError, InputError
from .inputs import open_input, require_bird
from .records import Parser, record_batches
from .status import FamilyData, RouteMapper, source_type_by_name
from .structs import (Banner, BirdStatus, ErrorReply, Protocol, Record, ReplyEnd, Route,
                      RouteCount, Unsupported, address_family, is_bird2, route_family)

__all__ = ("collect_live", "collect_dumps", "socket_problem", "fib_routes_live",
           "fib_routes_capture", "FibRoutes", "DEFAULT_DEADLINE")

log = logging.getLogger("nodestatus.sources")

#: The whole of one live query, every reply included. BIRD 1.6 needs 28-98 s to print a
#: million-route table (real-bird-notes.md); a node far from that answers in a second.
DEFAULT_DEADLINE = 300.0

#: Records a status is built from (a banner alone only gives the version).
_USED = (BirdStatus, Protocol, Route, RouteCount)


def _commands(classes: Iterable[str]) -> List[str]:
    classes = set(classes)
    cmds = ["show status"]                      # Ready/NotReady and the version, always
    if classes & {"BGP", "Routes"}:
        cmds.append("show protocols all")       # one query for every peer (Calico: N+1)
    if "Routes" in classes:
        cmds.append("show route")
    return cmds


class _Collector:
    """One daemon's records (a live connection, or the capture files of one family) ->
    FamilyData. Routes become status entries as they stream; one whose protocol needs
    ``show protocols`` to classify waits until the protocols are known."""

    def __init__(self, bird2: Optional[bool] = None) -> None:
        self.bird2 = bird2                      # None: decide from what the records say
        self.status: Optional[BirdStatus] = None
        self.version = ""
        self.by_name: Dict[str, Protocol] = {}
        self.mapper: Optional[RouteMapper] = None
        self.routes: Dict[int, list] = {4: [], 6: []}
        self.route_count: Dict[int, int] = {4: 0, 6: 0}
        self.per_table: Dict[Optional[str], int] = {}
        self.counts: List[RouteCount] = []
        self.deferred: List[Tuple[int, Route]] = []   # (family, route)
        self.reply_has_routes = False
        self.routes_done = False        # a capture set may hold show route and show route all
        self.skipped_routes = 0
        self.route_tables = False       # routes printed under BIRD 2's `Table …:` headings
        self.seen = {4: 0, 6: 0}        # routes read per family, mapped or deferred
        self.sync_failed = {4: 0, 6: 0}  # routes BIRD marks `!`

    @property
    def protocols(self) -> List[Protocol]:
        return list(self.by_name.values())

    def add(self, rec: Record) -> bool:
        """Take one record; True when the status is built from records of its kind."""
        if isinstance(rec, Route):
            if self.routes_done:
                self.skipped_routes += 1
                return True
            self.reply_has_routes = True
            self.add_route(rec)
        elif isinstance(rec, ReplyEnd):
            if self.reply_has_routes:
                self.routes_done = True
            self.reply_has_routes = False
            return False
        elif isinstance(rec, BirdStatus):
            self.status = rec
            self.version = self.version or rec.version or ""
        elif isinstance(rec, Protocol):
            old = self.by_name.get(rec.name)
            if old is None or rec.detail or not old.detail:   # `all` wins over plain rows
                self.by_name[rec.name] = rec
        elif isinstance(rec, Banner):
            self.version = rec.version
        elif isinstance(rec, RouteCount):
            self.counts.append(rec)
        return isinstance(rec, _USED)

    def add_route(self, route: Route) -> None:
        fam = route_family(route.prefix, route.table)
        self.seen[fam] += 1
        if route.sync_error:
            self.sync_failed[fam] += 1
        if route.table:
            self.route_tables = True
        self.per_table[route.table] = self.per_table.get(route.table, 0) + 1
        proto = route.protocol
        if self.mapper is None or (proto not in self.mapper.protocols
                                   and source_type_by_name(proto or "") is None):
            self.deferred.append((fam, route))  # needs `show protocols` to classify
            return
        entries = self.mapper.entries(route)
        if len(entries) == 1:
            self.routes[fam].append(entries[0])
        else:
            self.routes[fam].extend(entries)
        self.route_count[fam] += 1

    def protocols_done(self) -> None:
        self.mapper = RouteMapper(self.protocols)

    def is_bird2(self) -> bool:
        if self.bird2 is not None:
            return self.bird2
        if self.version:
            return is_bird2(self.version)
        return self.route_tables

    def finish(self, families: Dict[int, FamilyData], source: str) -> List[str]:
        """Hand everything to ``families`` (the ones this daemon answers for); returns
        notes worth telling the user."""
        if self.mapper is None:
            self.mapper = RouteMapper(self.protocols)
        deferred, self.deferred = self.deferred, []
        for fam, r in deferred:
            self.routes[fam].extend(self.mapper.entries(r))
            self.route_count[fam] += 1
        for fam, d in families.items():
            d.reachable = True
            d.source = source
            d.version = self.version
            d.status = self.status
            d.protocols = [p for p in self.protocols
                           if p.proto != "BGP" or fam in _bgp_families(p)]
            d.routes = self.routes[fam]
            d.route_count = self.route_count[fam]
            d.sync_failed = self.sync_failed[fam]
        notes = []
        if self.skipped_routes:
            notes.append(f"{self.skipped_routes} routes of a second route reply ignored (one "
                         f"route table per family) - at {source}")
        for c in self.counts:
            if c.is_total:
                continue
            got = self.per_table.get(c.table, 0) if c.table else sum(self.per_table.values())
            if self.per_table and c.shown > got:
                notes.append(f"`show route count` says {c.shown} routes"
                             f"{' in table ' + c.table if c.table else ''}, the route reply "
                             f"holds {got}: is the capture cut? - at {source}")
        if self.mapper.unclassified:
            log.info("routes from protocols with no CalicoNodeStatus source type: %s",
                     self.mapper.unclassified)
        return notes


def _bgp_families(p: Protocol) -> Tuple[int, ...]:
    addr = p.bgp.neighbor_address if p.bgp else None
    if addr:
        return (address_family(addr),)
    return (4, 6)


# --------------------------------------------------------------------------- live


def socket_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be a BIRD control socket (None if it is a socket): worth a
    warning when the user named it, since the family is then reported NotReady."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISDIR(mode):
        return "is a directory, not a socket"
    if not stat.S_ISSOCK(mode):
        return "is not a socket"
    return None


def collect_live(classes: Iterable[str], socket4: Optional[str] = None,
                 socket6: Optional[str] = None, *, connect_timeout: float = 5.0,
                 idle_timeout: float = 30.0, deadline: float = DEFAULT_DEADLINE
                 ) -> Tuple[FamilyData, FamilyData]:
    """Ask the node's BIRD daemons. A socket that cannot be reached makes its family
    NotReady (``FamilyData.unreachable`` says why); every other failure raises (no partial
    status). ``deadline`` bounds each daemon's whole query, however steadily it trickles."""
    paths = {4: socket4 or find_socket(4) or "/var/run/calico/bird.ctl",
             6: socket6 or find_socket(6) or "/var/run/calico/bird6.ctl"}
    out = {4: FamilyData(family=4, source=paths[4]), 6: FamilyData(family=6, source=paths[6])}
    cmds = _commands(classes)
    for fam in (4, 6):
        if out[fam].reachable:                  # a BIRD 2 daemon already answered for it
            continue
        client = BirdClient(paths[fam], connect_timeout=connect_timeout,
                            idle_timeout=idle_timeout, deadline=deadline)
        try:
            client.connect()
        except BirdUnreachableError as exc:
            log.info("IPv%d BIRD not reachable: %s", fam, exc)
            out[fam].unreachable = str(exc)
            continue
        with client:
            bird2 = client.is_bird2
            col = _Collector(bird2=bird2)
            col.add(client.banner)              # type: ignore[arg-type]
            for cmd, records in client.pipeline_iter(cmds):
                for rec in records:
                    col.add(rec)
                if cmd == "show protocols all":
                    col.protocols_done()
            families = {4: out[4], 6: out[6]} if bird2 else {fam: out[fam]}
            for note in col.finish(families, paths[fam]):
                log.info("%s", note)
    return out[4], out[6]


# --------------------------------------------------------------------------- captures


def collect_dumps(dump4: Sequence[str] = (), dump6: Sequence[str] = (),
                  classes: Iterable[str] = ("Agent", "BGP", "Routes"),
                  notes: Optional[List[str]] = None) -> Tuple[FamilyData, FamilyData]:
    """Rebuild a node's view from captured replies (any framing, any order, compressed or
    not; files, ``-``, FIFOs). A family with no capture is NotReady; a BIRD 2 capture given
    for one family serves both. Any file that cannot be read, is cut, or holds nothing a
    status uses raises :class:`InputError` naming it: a status is never built from a
    subset of the files given. Notes worth telling (a count that disagrees) go to
    ``notes``."""
    out = {4: FamilyData(family=4), 6: FamilyData(family=6)}
    classes = set(classes)
    for fam, files in ((4, dump4), (6, dump6)):
        if not files:
            continue
        col = _Collector()
        other = 10 - fam
        routes_by_file: Dict[str, Dict[int, int]] = {}
        for path in files:
            with open_input(path) as inp:
                require_bird(inp)
                before = dict(col.seen)
                used = False
                instead: List[Record] = []        # what a file holds if nothing used
                for batch in record_batches(inp, Parser(reply_markers=True)):
                    for rec in batch:
                        if col.add(rec):
                            used = True
                        elif isinstance(rec, (ErrorReply, Unsupported)):
                            instead.append(rec)
                if not used and (instead or col.version == ""):
                    raise InputError(_unused(instead), source=inp.name)
                routes_by_file[inp.name] = {f: col.seen[f] - before[f] for f in (4, 6)}
        bird2 = col.is_bird2()
        if not bird2:
            for name, seen in routes_by_file.items():
                if seen[other]:
                    raise InputError(f"holds IPv{other} routes, but it was given with --dump{fam} "
                                     "(a BIRD 1.6 daemon answers for one family)", source=name)
        serve = (4, 6) if bird2 and not (dump4 and dump6) else (fam,)
        source = ", ".join(files)
        found = col.finish({f: out[f] for f in serve}, source)
        if notes is not None:
            notes.extend(found)
        if "Agent" in classes and col.status is None:
            raise InputError(f"no `show status` reply in the IPv{fam} captures: cannot tell "
                             "whether that BIRD was ready", source=source)
        if len(serve) == 2:
            break
    return out[4], out[6]


def _unused(other: List[Record]) -> str:
    what = "show status, show protocols [all], show route [all], show route count"
    first = other[0] if other else None
    if isinstance(first, ErrorReply):
        return f"holds BIRD's error reply {first.code} {first.message!r}, not a reply a " \
               f"status is built from ({what})"
    if isinstance(first, Unsupported):
        return f"holds a reply a status is not built from ({first.first_line!r}…), not " \
               f"one of {what}"
    return f"holds no reply a status is built from ({what})"


# --------------------------------------------------------------------------- the FIB check


class FibRoutes(msgspec.Struct, kw_only=True):
    """BIRD's side of a FIB check, packed: ``packed[family]`` is ``(expected {key: value},
    merged {key: value}, sync_failed [key])``. ``exported``: read from ``show route export
    <kernel protocol>`` (exactly what BIRD sends) rather than a plain ``show route``."""

    packed: Dict[int, Tuple[dict, dict, list]]
    source: str
    exported: bool
    bird2: bool
    kernel_protocol: Optional[str] = None


def fib_routes_live(socket_path: str, family: int, ifindex: Dict[str, int], *,
                    connect_timeout: float = 5.0, idle_timeout: float = 120.0,
                    deadline: float = DEFAULT_DEADLINE) -> Optional[FibRoutes]:
    """What the daemon's kernel protocol for ``family`` exports (merged multipath
    included), packed while it streams; None when the daemon has no kernel protocol for
    it."""
    from .fibcheck import fib_sink

    with BirdClient(socket_path, connect_timeout=connect_timeout, idle_timeout=idle_timeout,
                    deadline=deadline) as client:
        protocols = [r for r in client.query("show protocols") if isinstance(r, Protocol)]
        bird2 = client.is_bird2
        kernel = [p.name for p in protocols if p.proto == "Kernel"
                  and (not bird2 or not p.table or route_family("", p.table) == family)]
        if not kernel:
            return None
        name = kernel[0]
        cmd = f"show route export {name}" if name.isidentifier() else f"show route export '{name}'"
        # exported: the kernel protocol's own routes never come back; protocols named as
        # kernel ones (another table's) are left out by the rule's name check
        sink = fib_sink(ifindex, exported=True, bird2=bird2)
        client.query(cmd, sink=sink)
    return FibRoutes(packed=sink.result(), source=socket_path, exported=True, bird2=bird2,
                     kernel_protocol=name)


def fib_routes_capture(path: str, ifindex: Dict[str, int]) -> FibRoutes:
    """A captured ``show route [all]`` / ``show route export …`` reply, read once and
    packed as it streams; whether it is BIRD 2's comes from a banner or ``show status``
    before its first route, else from BIRD 2's ``Table`` headings."""
    from .fibcheck import fib_sink

    sink = fib_sink(ifindex, exported=False)
    with open_input(path) as inp:
        require_bird(inp)
        for _ in record_batches(inp, Parser(sink=sink)):
            pass
        if sink.routes == 0:
            raise InputError("holds no routes: give a `show route [all]` or `show route "
                             "export <kernel protocol>` reply", source=inp.name)
        return FibRoutes(packed=sink.result(), source=inp.name, exported=False,
                         bird2=bool(sink.is_bird2))
