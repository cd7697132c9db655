"""Parsed BIRD records -> CalicoNodeStatus, following Calico's rules (and fixing what
Calico gets wrong: BIRD 2, multipath, unknown protocols, the version string).

Pure functions over records: where the records come from (a live socket, a capture) is
``sources.py``'s business.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Tuple

import msgspec

from .resource import (
    BGPDaemonStatus,
    CalicoNodeBGPRouteStatus,
    CalicoNodeBGPStatus,
    CalicoNodePeer,
    CalicoNodeRoute,
    CalicoNodeRouteLearnedFrom,
    CalicoNodeStatusStatus,
    timestamp,
)
from .structs import BirdStatus, Protocol, Route, address_family

__all__ = (
    "FamilyData",
    "agent_status",
    "peer_of",
    "session_state",
    "established",
    "bgp_status",
    "source_type_by_name",
    "RouteMapper",
    "assemble_status",
    "build_status",
)

#: Calico's peer protocol names: ``Mesh_10_128_0_242``, ``Node_…``, ``Global_fd80_24e2__2``.
_PEER_NAME = re.compile(r"^(Mesh|Node|Global)_(.+)$")
_PEER_TYPE = {"Mesh": "NodeMesh", "Node": "NodePeer", "Global": "GlobalPeer"}
#: Calico's peer types (the ``type`` of a status's BGP peers)
PEER_TYPES = tuple(_PEER_TYPE.values())
_SESSION_STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established",
                   "Close")
# BIRD-only words for the session state, mapped onto Calico's enumeration.
_STATE_ALIASES = {"Passive": "Idle", "Down": "Idle"}
_SOURCE_BY_PROTO = {"Kernel": "Kernel", "Static": "Static", "Direct": "Direct",
                    "BGP": "BGPPeer"}
#: Calico's rule for the other protocols: the name's start says the source type.
_SOURCE_BY_NAME = (("kernel", "Kernel"), ("static", "Static"), ("direct", "Direct"))


class FamilyData(msgspec.Struct, kw_only=True):
    """What one family's BIRD said: ``reachable`` False means its socket was not there
    (the family is NotReady, not an error)."""

    family: int
    reachable: bool = False
    #: why the socket could not be reached (``reachable`` False), for messages
    unreachable: str = ""
    source: str = ""
    version: str = ""
    status: Optional[BirdStatus] = None
    protocols: List[Protocol] = []
    #: CalicoNodeRoute entries, built while the route reply streamed (no Route kept).
    routes: List[CalicoNodeRoute] = []
    route_count: int = 0
    #: Routes BIRD marks ``!`` (its best route, the kernel refused it); RIB in the status.
    sync_failed: int = 0


def source_type_by_name(name: str) -> Optional[str]:
    """Calico's name rules: ``kernel*`` -> Kernel, ``static*`` -> Static, ``direct*`` ->
    Direct, a peer protocol (``Mesh_…``, ``Node_…``, ``Global_…``) -> NodeMesh / BGPPeer;
    None when the name alone does not tell (the protocol's type must)."""
    low = name.lower()
    for prefix, kind in _SOURCE_BY_NAME:
        if low.startswith(prefix):
            return kind
    m = _PEER_NAME.match(name)
    if m:
        return "NodeMesh" if m.group(1) == "Mesh" else "BGPPeer"
    return None


def decode_peer_ip(encoded: str) -> str:
    """``10_128_0_242`` -> ``10.128.0.242``; ``fd80_24e2_f998_72d7__2`` -> ``fd80:24e2:f998:72d7::2``."""
    parts = encoded.split("_")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return ".".join(parts)
    return encoded.replace("_", ":")


def peer_of(proto: Protocol) -> Optional[Tuple[str, str]]:
    """(type, peerIP) for a Calico peer protocol, None for any other protocol."""
    if proto.proto != "BGP":
        return None
    m = _PEER_NAME.match(proto.name)
    if not m:
        return None
    ip = proto.bgp.neighbor_address if proto.bgp and proto.bgp.neighbor_address else None
    if ip is None:
        ip = decode_peer_ip(m.group(2))
    return _PEER_TYPE[m.group(1)], ip.split("%", 1)[0]


def session_state(proto: Protocol) -> str:
    """The BGP session state of a BGP protocol, in Calico's words (``Idle`` … ``Established``)."""
    word = (proto.bgp.state if proto.bgp and proto.bgp.state else proto.bgp_state) or ""
    word = _STATE_ALIASES.get(word, word)
    if word in _SESSION_STATES:
        return word
    # down protocols print no state word: BIRD's session is idle then
    return "Idle" if proto.state in ("down", "start", "") else ""


def established(proto: Protocol) -> bool:
    """Calico's count of established peers: the protocol's state column is ``up``."""
    return proto.state == "up"


def agent_status(data: FamilyData) -> BGPDaemonStatus:
    if not data.reachable or data.status is None:
        return BGPDaemonStatus(state="NotReady")
    st = data.status
    return BGPDaemonStatus(
        state="Ready",
        version=st.version or data.version,
        router_id=st.router_id or "",
        last_boot_time=st.last_reboot or "",
        last_reconfiguration_time=st.last_reconfiguration or "",
    )


def bgp_status(v4: FamilyData, v6: FamilyData) -> CalicoNodeBGPStatus:
    """Peers per family. A BIRD 2 daemon answers for both families: its peers are split
    by neighbour address."""
    peers: Dict[int, List[CalicoNodePeer]] = {4: [], 6: []}
    est = {4: 0, 6: 0}
    not_est = {4: 0, 6: 0}
    seen = set()
    for data in (v4, v6):
        if not data.reachable:
            continue
        for proto in data.protocols:
            pe = peer_of(proto)
            if pe is None:
                continue
            ptype, ip = pe
            fam = address_family(ip)
            if (fam, proto.name) in seen:   # BIRD 2 seen through both family sockets
                continue
            seen.add((fam, proto.name))
            peers[fam].append(CalicoNodePeer(peer_ip=ip, type=ptype,
                                             state=session_state(proto), since=proto.since))
            if established(proto):
                est[fam] += 1
            else:
                not_est[fam] += 1
    return CalicoNodeBGPStatus(
        number_established_v4=est[4], number_not_established_v4=not_est[4],
        number_established_v6=est[6], number_not_established_v6=not_est[6],
        peers_v4=peers[4], peers_v6=peers[6])


class RouteMapper:
    """Route records -> CalicoNodeRoute entries. Knows the protocols (for routes from
    protocols Calico has no name rule for) and shares identical learnedFrom values."""

    def __init__(self, protocols: Iterable[Protocol]) -> None:
        self.protocols = {p.name: p for p in protocols}
        self._learned: Dict[str, CalicoNodeRouteLearnedFrom] = {}
        self.unclassified: Dict[str, int] = {}

    def learned_from(self, name: str) -> CalicoNodeRouteLearnedFrom:
        lf = self._learned.get(name)
        if lf is None:
            lf = self._learned[name] = self._classify(name)
        return lf

    def _classify(self, name: str) -> CalicoNodeRouteLearnedFrom:
        kind = source_type_by_name(name)
        proto = self.protocols.get(name)
        if kind in ("Kernel", "Static", "Direct"):
            return CalicoNodeRouteLearnedFrom(source_type=kind)
        if kind is not None:                      # a Calico peer protocol
            ip = None
            if proto is not None and proto.bgp and proto.bgp.neighbor_address:
                ip = proto.bgp.neighbor_address.split("%", 1)[0]
            m = _PEER_NAME.match(name)
            assert m is not None
            return CalicoNodeRouteLearnedFrom(source_type=kind,
                                              peer_ip=ip or decode_peer_ip(m.group(2)))
        # better than Calico: classify by the protocol's type instead of failing the list
        if proto is not None and proto.proto in _SOURCE_BY_PROTO:
            kind = _SOURCE_BY_PROTO[proto.proto]
            ip = ""
            if kind == "BGPPeer" and proto.bgp and proto.bgp.neighbor_address:
                ip = proto.bgp.neighbor_address.split("%", 1)[0]
            return CalicoNodeRouteLearnedFrom(source_type=kind, peer_ip=ip)
        # no sourceType fits (OSPF, Pipe, unknown protocol): keep the route, say nothing false
        self.unclassified[name] = self.unclassified.get(name, 0) + 1
        return CalicoNodeRouteLearnedFrom()

    def entries(self, route: Route) -> List[CalicoNodeRoute]:
        """One entry per next hop (Calico has one per line and no multipath). FIB is BIRD's
        ``*`` route only: a ``!`` route is its best, but the kernel refused it."""
        rtype = "FIB" if route.primary and not route.sync_error else "RIB"
        lf = self._learned.get(route.protocol or "")
        if lf is None:
            lf = self.learned_from(route.protocol or "")
        if route.type != "unicast":
            iface = route.type if route.type in ("blackhole", "unreachable", "prohibited") else ""
            return [CalicoNodeRoute(rtype, route.prefix, "N/A", iface, lf)]
        if not route.nexthops:
            return [CalicoNodeRoute(rtype, route.prefix, "N/A", "", lf)]
        return [CalicoNodeRoute(rtype, route.prefix, h.gateway or "N/A", h.interface or "", lf)
                for h in route.nexthops]


def build_status(resource, v4: FamilyData, v6: FamilyData, *, now=None):
    """A copy of ``resource`` (a validated CalicoNodeStatus) with its status filled from
    the two families' data and ``lastUpdated`` set (RFC3339, UTC)."""
    st = assemble_status(resource.spec.classes, v4, v6)
    st.last_updated = timestamp(now)
    return msgspec.structs.replace(resource, status=st)


def assemble_status(classes: Iterable[str], v4: FamilyData, v6: FamilyData) -> CalicoNodeStatusStatus:
    """The status block for the requested classes (``lastUpdated`` is set by the writer)."""
    classes = set(classes)
    st = CalicoNodeStatusStatus()
    if "Agent" in classes:
        st.agent.bird_v4 = agent_status(v4)
        st.agent.bird_v6 = agent_status(v6)
    if "BGP" in classes:
        st.bgp = bgp_status(v4, v6)
    if "Routes" in classes:
        st.routes = CalicoNodeBGPRouteStatus(routes_v4=list(v4.routes), routes_v6=list(v6.routes))
    return st
