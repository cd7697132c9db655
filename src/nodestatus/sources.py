"""Where a node's BIRD answers come from: live control sockets or captured replies.

Both produce ``status.FamilyData`` per address family. Route replies are streamed and
turned into CalicoNodeStatus entries as they arrive, so a 100k-route table is never held
as parsed records. A BIRD 2 daemon answers for both families and is asked once.
"""
from __future__ import annotations

import functools
import logging
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .birdsock import BirdClient, find_socket
from .errors import BirdUnreachableError, NodeStatusError
from .records import iter_records
from .status import FamilyData, RouteMapper, route_family
from .structs import Banner, BirdStatus, Protocol, ReplyEnd, Route

__all__ = ("collect_live", "collect_dumps", "is_bird2_version")

log = logging.getLogger("nodestatus.sources")


def is_bird2_version(version: str) -> bool:
    v = version.split("+bird", 1)[1] if "+bird" in version else version
    v = v.lstrip("v")
    head = v.split(".", 1)[0]
    return head.isdigit() and int(head) >= 2


def _commands(classes: Iterable[str]) -> List[str]:
    classes = set(classes)
    cmds = ["show status"]                      # Ready/NotReady and the version, always
    if classes & {"BGP", "Routes"}:
        cmds.append("show protocols all")       # one query for every peer (Calico: N+1)
    if "Routes" in classes:
        cmds.append("show route")
    return cmds


class _Collector:
    """Accumulates one daemon's records into FamilyData (two for a BIRD 2 daemon)."""

    def __init__(self, families: Dict[int, FamilyData]) -> None:
        self.families = families
        self.by_name: Dict[str, Protocol] = {}
        self.mapper: Optional[RouteMapper] = None
        self.deferred: List[Route] = []
        self.reply_has_routes = False
        self.routes_done = False        # a capture set may hold show route and show route all
        self.skipped_routes = 0

    @property
    def protocols(self) -> List[Protocol]:
        return list(self.by_name.values())

    def add(self, rec) -> None:
        if isinstance(rec, Route):
            if self.routes_done:
                self.skipped_routes += 1
                return
            self.reply_has_routes = True
            self.add_route(rec)
        elif isinstance(rec, ReplyEnd):
            if self.reply_has_routes:
                self.routes_done = True
            self.reply_has_routes = False
        elif isinstance(rec, BirdStatus):
            for d in self.families.values():
                d.status = rec
        elif isinstance(rec, Protocol):
            old = self.by_name.get(rec.name)
            if old is None or rec.detail or not old.detail:   # `all` wins over plain rows
                self.by_name[rec.name] = rec
        elif isinstance(rec, Banner):
            for d in self.families.values():
                d.version = rec.version

    def add_route(self, route: Route) -> None:
        table = route.table
        fam = 6 if (table[-1:] == "6" if table else ":" in route.prefix) else 4
        data = self.families.get(fam)
        if data is None:
            return                              # e.g. a 1.6 dump given for the other family
        proto = route.protocol
        if self.mapper is None or (proto not in self.mapper.protocols
                                   and not _name_classifies(proto or "")):
            self.deferred.append(route)         # needs `show protocols` to classify
            return
        entries = self.mapper.entries(route)
        if len(entries) == 1:
            data.routes.append(entries[0])
        else:
            data.routes.extend(entries)
        data.route_count += 1

    def protocols_done(self) -> None:
        self.mapper = RouteMapper(self.protocols)

    def finish(self) -> None:
        if self.mapper is None:
            self.mapper = RouteMapper(self.protocols)
        for d in self.families.values():
            d.protocols = [p for p in self.protocols
                           if p.proto != "BGP" or d.family in _bgp_families(p)]
        deferred, self.deferred = self.deferred, []
        for r in deferred:
            data = self.families[route_family(r)]
            data.routes.extend(self.mapper.entries(r))
            data.route_count += 1
        if self.skipped_routes:
            log.info("%d routes of a second route reply ignored (one route table per family)",
                     self.skipped_routes)
        if self.mapper.unclassified:
            log.info("routes from protocols with no CalicoNodeStatus source type: %s",
                     self.mapper.unclassified)


@functools.lru_cache(maxsize=4096)
def _name_classifies(name: str) -> bool:
    """Calico's name rules decide this protocol's source type without `show protocols`."""
    low = name.lower()
    return low.startswith(("kernel", "static", "direct", "mesh_", "node_", "global_"))


def _bgp_families(p: Protocol) -> Tuple[int, ...]:
    addr = p.bgp.neighbor_address if p.bgp else None
    if addr:
        return (6,) if ":" in addr else (4,)
    return (4, 6)


def collect_live(classes: Iterable[str], socket4: Optional[str] = None,
                 socket6: Optional[str] = None, *, connect_timeout: float = 5.0,
                 idle_timeout: float = 30.0) -> Tuple[FamilyData, FamilyData]:
    """Ask the node's BIRD daemons. A socket that cannot be reached makes its family
    NotReady; every other failure raises (no partial status)."""
    paths = {4: socket4 or find_socket(4) or "/var/run/calico/bird.ctl",
             6: socket6 or find_socket(6) or "/var/run/calico/bird6.ctl"}
    out = {4: FamilyData(family=4, source=paths[4]), 6: FamilyData(family=6, source=paths[6])}
    cmds = _commands(classes)
    done6 = False
    for fam in (4, 6):
        if fam == 6 and done6:
            break
        client = BirdClient(paths[fam], connect_timeout=connect_timeout,
                            idle_timeout=idle_timeout)
        try:
            banner = client.connect()
        except BirdUnreachableError as exc:
            log.info("IPv%d BIRD not reachable: %s", fam, exc)
            continue
        with client:
            families = {fam: out[fam]}
            if client.is_bird2:                  # one daemon answers for both families
                families = {4: out[4], 6: out[6]}
                out[4].source = out[6].source = paths[fam]
                done6 = True
            for d in families.values():
                d.reachable = True
                d.version = banner.version
            col = _Collector(families)
            for cmd, records in client.pipeline_iter(cmds):
                for rec in records:
                    col.add(rec)
                if cmd == "show protocols all":
                    col.protocols_done()
            col.finish()
    return out[4], out[6]


def collect_dumps(dump4: Sequence[str] = (), dump6: Sequence[str] = (),
                  classes: Iterable[str] = ("Agent", "BGP", "Routes")
                  ) -> Tuple[FamilyData, FamilyData]:
    """Rebuild a node's view from captured replies (any framing, any order, gzip allowed).
    A family with no capture is NotReady. A BIRD 2 capture given for one family serves
    both."""
    out = {4: FamilyData(family=4), 6: FamilyData(family=6)}
    bird2 = False
    for fam, files in ((4, dump4), (6, dump6)):
        if not files:
            continue
        families = {fam: out[fam]}
        if _is_bird2_dump(files) and not (dump4 and dump6):
            families = {4: out[4], 6: out[6]}
            bird2 = True
        for d in families.values():
            d.reachable = True
            d.source = ", ".join(files)
        col = _Collector(families)
        for path in files:
            for rec in iter_records(path, reply_markers=True):
                col.add(rec)
        col.finish()
        for d in families.values():
            if d.status is None and "Agent" in set(classes):
                raise NodeStatusError(
                    f"no `show status` reply in the IPv{fam} captures ({d.source}): "
                    "cannot tell whether that BIRD was ready")
        if bird2:
            break
    return out[4], out[6]


def _is_bird2_dump(files: Sequence[str]) -> bool:
    """Peek at the captures' banner or status version."""
    for path in files:
        try:
            for rec in iter_records(path):
                if isinstance(rec, (Banner, BirdStatus)) and rec.version:
                    return is_bird2_version(rec.version)
                if isinstance(rec, Route) and rec.table:
                    return True
                if isinstance(rec, (Protocol, Route)):
                    break
        except NodeStatusError:
            continue
    return False
