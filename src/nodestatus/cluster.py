"""The fleet in one view: every node's CalicoNodeStatus, and the problems only a view across
nodes can show; and ``cluster request``, which asks for one resource per node.

Works on the resources as the datastore holds them (whatever wrote them: this agent,
calico-node's reporter), so it never asks a BIRD. Problems, each naming both ends:

- asymmetric session: node A reports its session to node B Established, node B reports
  its session to A otherwise (or has none);
- stale status: ``lastUpdated`` older than twice the resource's ``updatePeriodSeconds``
  (a period of 0 never refreshes, so it is never stale), or no status at all, or a node
  the datastore knows with no CalicoNodeStatus;
- NotReady daemon: a node's BIRD of a family other nodes run is NotReady (a family no
  node runs, say IPv6 on an IPv4-only cluster, is no problem);
- missing block: node B originates a block (its blackhole route) or host routes (/32,
  /128 from another node's block: borrowed addresses), and node A, which reports an
  Established session to B, has no route to one of them.

Peer addresses are matched to nodes by the addresses the datastore knows (Calico's Node
resources in etcd, calico-node's annotations or InternalIPs in Kubernetes), else by the
IPv4 router ID a node's status reports.
"""
from __future__ import annotations

import datetime
import ipaddress
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import msgspec

from .errors import ConflictError, NotFoundError, SpecError
from .resource import (API_VERSIONS, KIND, CalicoNodeStatus, CalicoNodeStatusSpec,
                       ObjectMeta, timestamp, validate)
from .sinks import NodeInfo, Sink, Stored
from .status import PEER_TYPES

__all__ = ("NodeRow", "Problem", "ClusterView", "build_view", "render_view", "Action",
           "request", "delete_requested", "requested_resource", "check_request",
           "REQUESTED_LABEL", "DEFAULT_PREFIX")

#: The label ``cluster request`` puts on the resources it creates: it changes or deletes
#: no other resource.
REQUESTED_LABEL = ("app.kubernetes.io/managed-by", "nodestatus-cluster-request")
DEFAULT_PREFIX = "nodestatus-"
#: Retries of a write that met a conflict (the agent writes the status meanwhile).
ATTEMPTS = 3
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
_FAMILIES = (4, 6)


class NodeRow(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """One node as its freshest statuses describe it (None: not reported)."""

    node: str
    resources: List[str] = []
    bird_v4: str = ""
    bird_v6: str = ""
    established_v4: Optional[int] = None
    configured_v4: Optional[int] = None
    established_v6: Optional[int] = None
    configured_v6: Optional[int] = None
    routes_v4: Optional[int] = None
    routes_v6: Optional[int] = None
    last_updated: str = ""
    age_seconds: Optional[float] = None
    ipv4: str = ""
    ipv6: str = ""


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    #: asymmetric-session | stale-status | no-status | daemon-not-ready | missing-block
    kind: str
    nodes: List[str]
    family: Optional[int] = None
    detail: str = ""


class ClusterView(msgspec.Struct, kw_only=True):
    nodes: List[NodeRow]
    problems: List[Problem]


# --------------------------------------------------------------------------- reading


def _parse_time(text: object) -> Optional[datetime.datetime]:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def _dict(obj: object, key: str) -> dict:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _list(obj: object, key: str) -> list:
    value = obj.get(key) if isinstance(obj, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


class _Res:
    """One resource as read: name, node, classes, period, status, when it was written."""

    def __init__(self, stored: Stored) -> None:
        raw = stored.raw
        spec = _dict(raw, "spec")
        self.name = stored.name
        self.node = spec.get("node") if isinstance(spec.get("node"), str) else ""
        classes = spec.get("classes")
        self.classes = {c for c in classes if isinstance(c, str)} \
            if isinstance(classes, list) else set()
        period = spec.get("updatePeriodSeconds")
        self.period = period if isinstance(period, int) and not isinstance(period, bool) else 0
        self.status = _dict(raw, "status")
        self.updated = _parse_time(self.status.get("lastUpdated"))


class _Node:
    """What the view knows of one node: its resources and the freshest block of each."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.resources: List[_Res] = []
        self.addresses: Dict[int, str] = {}
        self.agent: Optional[dict] = None
        self.bgp: Optional[dict] = None
        self.routes: Optional[dict] = None
        self.updated: Optional[datetime.datetime] = None
        self._peer_at: Dict[int, Dict[str, dict]] = {}

    def pick(self) -> None:
        """Each class from the freshest resource reporting it."""
        for key, cls in (("agent", "Agent"), ("bgp", "BGP"), ("routes", "Routes")):
            have = [r for r in self.resources if cls in r.classes and key in r.status
                    and r.updated is not None]
            if have:
                best = max(have, key=lambda r: r.updated)     # type: ignore[arg-type,return-value]
                setattr(self, key, _dict(best.status, key))
        times = [r.updated for r in self.resources if r.updated is not None]
        self.updated = max(times) if times else None

    def peers(self, fam: int) -> List[dict]:
        return _list(self.bgp, f"peersV{fam}")

    def peer_at(self, fam: int, addr: str) -> Optional[dict]:
        """This node's session to ``addr`` (the first, as listed), found by address."""
        index = self._peer_at.get(fam)
        if index is None:
            index = self._peer_at[fam] = {}
            for p in self.peers(fam):
                index.setdefault(_canonical(str(p.get("peerIP", ""))), p)
        return index.get(_canonical(addr))

    def route_list(self, fam: int) -> List[dict]:
        return _list(self.routes, f"routesV{fam}")

    def daemon(self, fam: int) -> str:
        state = _dict(self.agent, f"birdV{fam}").get("state")
        return state if isinstance(state, str) else ""


def _networks(prefixes: Iterable[str]) -> List[Network]:
    out = []
    for p in prefixes:
        try:
            out.append(ipaddress.ip_network(p, strict=False))
        except ValueError:
            continue
    return out


class _BlockOwners:
    """Every node's blocks of one family, to ask which nodes' blocks hold a prefix by
    looking its supernets up (one per block length), not by scanning every block."""

    def __init__(self, blocks: Dict[str, List[Network]]) -> None:
        self.owners: Dict[Network, Set[str]] = {}
        for name, nets in blocks.items():
            for net in nets:
                self.owners.setdefault(net, set()).add(name)
        self.lengths = sorted({net.prefixlen for net in self.owners})

    def holders(self, prefix: str) -> Set[str]:
        try:
            net = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            return set()
        out: Set[str] = set()
        for plen in self.lengths:
            if plen > net.prefixlen:
                break
            out |= self.owners.get(net.supernet(new_prefix=plen), set())
        return out


def _blocks(node: _Node, fam: int) -> List[str]:
    """The blocks a node originates: its blackhole routes (Calico's static route of each
    block it owns)."""
    return [r.get("destination", "") for r in node.route_list(fam)
            if r.get("interface") == "blackhole"
            and _dict(r, "learnedFrom").get("sourceType") == "Static"]


def _host_routes(node: _Node, fam: int, blocks: _BlockOwners) -> List[str]:
    """The /32 (/128) routes a node originates for addresses it borrowed from another
    node's block (Calico exports those; its own block's workloads are covered by the
    block)."""
    host = 32 if fam == 4 else 128
    out = []
    for r in node.route_list(fam):
        dest = r.get("destination", "")
        if not isinstance(dest, str) or not dest.endswith(f"/{host}") or r.get("type") != "FIB":
            continue
        if _dict(r, "learnedFrom").get("sourceType") not in ("Kernel", "Static"):
            continue
        holders = blocks.holders(dest)
        if holders and node.name not in holders:
            out.append(dest)
    return out


# --------------------------------------------------------------------------- the view


def _age(now: datetime.datetime, when: Optional[datetime.datetime]) -> Optional[float]:
    return None if when is None else round(max(0.0, (now - when).total_seconds()), 1)


def build_view(statuses: Sequence[Stored], known: Sequence[NodeInfo] = (),
               now: Optional[datetime.datetime] = None) -> ClusterView:
    """The view of every node, from the stored resources and the nodes the datastore
    knows; ``now`` (UTC) is when ages are taken."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    nodes: Dict[str, _Node] = {}
    for info in known:
        n = nodes.setdefault(info.name, _Node(info.name))
        for fam, addr in ((4, info.ipv4), (6, info.ipv6)):
            if addr:
                n.addresses[fam] = addr
    for stored in statuses:
        res = _Res(stored)
        if res.node:
            nodes.setdefault(res.node, _Node(res.node)).resources.append(res)
    for n in nodes.values():
        n.pick()
        router_id = _dict(n.agent, "birdV4").get("routerID")
        if 4 not in n.addresses and isinstance(router_id, str) and router_id:
            n.addresses[4] = router_id               # Calico's router ID: the IPv4 address
    owner: Dict[str, _Node] = {}
    for n in nodes.values():
        for addr in n.addresses.values():
            owner.setdefault(_canonical(addr), n)
    ordered = sorted(nodes.values(), key=lambda n: n.name)
    problems = (_stale(ordered, now) + _not_ready(ordered) + _asymmetric(ordered, owner)
                + _missing_blocks(ordered, owner))
    return ClusterView(nodes=[_row(n, now) for n in ordered], problems=problems)


def _canonical(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def _row(n: _Node, now: datetime.datetime) -> NodeRow:
    row = NodeRow(node=n.name, resources=sorted(r.name for r in n.resources),
                  bird_v4=n.daemon(4), bird_v6=n.daemon(6),
                  last_updated=timestamp(n.updated) if n.updated else "",
                  age_seconds=_age(now, n.updated), ipv4=n.addresses.get(4, ""),
                  ipv6=n.addresses.get(6, ""))
    if n.bgp is not None:
        for fam in _FAMILIES:
            est = n.bgp.get(f"numberEstablishedV{fam}")
            not_est = n.bgp.get(f"numberNotEstablishedV{fam}")
            if isinstance(est, int) and isinstance(not_est, int):
                setattr(row, f"established_v{fam}", est)
                setattr(row, f"configured_v{fam}", est + not_est)
    if n.routes is not None:
        row.routes_v4, row.routes_v6 = len(n.route_list(4)), len(n.route_list(6))
    return row


def _stale(nodes: Sequence[_Node], now: datetime.datetime) -> List[Problem]:
    out = []
    for n in nodes:
        if not n.resources:
            out.append(Problem(kind="no-status", nodes=[n.name], detail=f"{n.name} has no "
                               "CalicoNodeStatus (`nodestatus cluster request --all-nodes` "
                               "creates one per node)"))
        for r in n.resources:
            if r.updated is None:
                out.append(Problem(kind="no-status", nodes=[n.name], detail=(
                    f"{r.name} (node {n.name}) has no status yet: no reporter serves it")))
            elif r.period > 0 and (now - r.updated).total_seconds() > 2 * r.period:
                out.append(Problem(kind="stale-status", nodes=[n.name], detail=(
                    f"{r.name} (node {n.name}) was last updated {_human(_age(now, r.updated))}"
                    f" ago, more than twice its period of {r.period}s")))
    return out


def _not_ready(nodes: Sequence[_Node]) -> List[Problem]:
    out = []
    for fam in _FAMILIES:
        ready = [n.name for n in nodes if n.daemon(fam) == "Ready"]
        if not ready:
            continue                                  # nobody runs this family
        for n in nodes:
            if n.daemon(fam) == "NotReady":
                out.append(Problem(kind="daemon-not-ready", nodes=[n.name], family=fam,
                                   detail=f"{n.name}'s BIRD for IPv{fam} is NotReady "
                                   f"({len(ready)} other node(s) have theirs Ready)"))
    return out


def _established_to(nodes: Sequence[_Node], owner: Dict[str, _Node]
                    ) -> Iterable[Tuple[_Node, _Node, int, dict]]:
    """(A, B, family, A's peer entry) for every session A reports Established to a node B."""
    for a in nodes:
        for fam in _FAMILIES:
            for p in a.peers(fam):
                if p.get("state") != "Established" or p.get("type") not in PEER_TYPES:
                    continue
                b = owner.get(_canonical(str(p.get("peerIP", ""))))
                if b is not None and b is not a:
                    yield a, b, fam, p


def _asymmetric(nodes: Sequence[_Node], owner: Dict[str, _Node]) -> List[Problem]:
    out = []
    for a, b, fam, p in _established_to(nodes, owner):
        if b.bgp is None or fam not in a.addresses:
            continue          # B reports no BGP (a no-status problem), or A's address unknown
        back = b.peer_at(fam, a.addresses[fam])
        if back is not None and back.get("state") == "Established":
            continue
        seen = f"reports {a.name} ({a.addresses[fam]}) {back.get('state') or 'in no state'}" \
            if back is not None else f"reports no session to {a.name} ({a.addresses[fam]})"
        out.append(Problem(kind="asymmetric-session", nodes=[a.name, b.name], family=fam,
                           detail=f"{a.name} reports its IPv{fam} session to {b.name} "
                           f"({p.get('peerIP')}) Established, but {b.name} {seen}"))
    return out


def _missing_blocks(nodes: Sequence[_Node], owner: Dict[str, _Node]) -> List[Problem]:
    origin: Dict[Tuple[str, int], List[str]] = {}       # what each node originates
    for fam in _FAMILIES:
        blocks = {n.name: _blocks(n, fam) for n in nodes}
        owners = _BlockOwners({name: _networks(v) for name, v in blocks.items()})
        for n in nodes:
            origin[(n.name, fam)] = blocks[n.name] + _host_routes(n, fam, owners)
    have: Dict[Tuple[str, int], Set[object]] = {}       # the destinations each node has
    out = []
    for a, b, fam, _ in _established_to(nodes, owner):
        if a.routes is None or b.routes is None:
            continue
        if (a.name, fam) not in have:
            have[(a.name, fam)] = {r.get("destination") for r in a.route_list(fam)}
        missing = [p for p in origin[(b.name, fam)] if p not in have[(a.name, fam)]]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more"
                                              if len(missing) > 5 else "")
            out.append(Problem(kind="missing-block", nodes=[a.name, b.name], family=fam,
                               detail=f"{a.name} has an Established IPv{fam} session to "
                               f"{b.name} but no route to {b.name}'s {shown}"))
    return out


# --------------------------------------------------------------------------- output


def _human(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def _count(est: Optional[int], total: Optional[int]) -> str:
    return "-" if est is None or total is None else f"{est}/{total}"


def render_view(view: ClusterView, fmt: str) -> str:
    """``wide`` (a table, then one line per problem), ``json`` or ``yaml``."""
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(view)).decode() + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(msgspec.to_builtins(view), sort_keys=False)
    from .render import table

    rows: List[Sequence[str]] = [(r.node, r.bird_v4 or "-", r.bird_v6 or "-",
             _count(r.established_v4, r.configured_v4),
             _count(r.established_v6, r.configured_v6),
             "-" if r.routes_v4 is None else str(r.routes_v4),
             "-" if r.routes_v6 is None else str(r.routes_v6),
             _human(r.age_seconds)) for r in view.nodes]
    out = [table(("NODE", "BIRD V4", "BIRD V6", "SESSIONS V4", "SESSIONS V6", "ROUTES V4",
                  "ROUTES V6", "STATUS AGE"), rows)]
    if not view.problems:
        out.append("No problems found.")
    else:
        out.append(f"{len(view.problems)} problem(s):")
        out += [f"  {p.kind:<18} {p.detail}" for p in view.problems]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- request


class Action(msgspec.Struct, kw_only=True):
    #: created | updated | unchanged | skipped | deleted
    action: str
    name: str
    node: str = ""
    detail: str = ""

    def line(self) -> str:
        node = f" (node {self.node})" if self.node else ""
        return f"{self.action} {self.name}{node}" + (f": {self.detail}" if self.detail else "")


def requested_resource(node: str, classes: Sequence[str], period: int,
                       prefix: str) -> CalicoNodeStatus:
    """The resource ``cluster request`` wants for ``node``, validated as Calico would
    (SpecError naming the field)."""
    res = CalicoNodeStatus(
        api_version=API_VERSIONS[0], kind=KIND,
        metadata=ObjectMeta(name=f"{prefix}{node}", labels=dict([REQUESTED_LABEL])),
        spec=CalicoNodeStatusSpec(node=node, classes=list(classes),
                                  update_period_seconds=period))
    return validate(res, source=f"cluster request for node {node}")


def _ours(stored: Stored) -> bool:
    key, value = REQUESTED_LABEL
    return _dict(_dict(stored.raw, "metadata"), "labels").get(key) == value


def _spec_of(stored: Stored) -> dict:
    return _dict(stored.raw, "spec")


def request(sink: Sink, nodes: Sequence[NodeInfo], classes: Sequence[str], period: int,
            prefix: str = DEFAULT_PREFIX) -> List[Action]:
    """One CalicoNodeStatus per node in ``nodes``: created, or its spec brought to what is
    asked when this command created it; a resource of that name it did not create is left
    alone. Resources it created (same prefix) for nodes that are gone are deleted.
    Idempotent. SinkError from the datastore passes through."""
    wanted = {}
    actions: List[Action] = []
    for n in nodes:
        try:
            res = requested_resource(n.name, classes, period, prefix)
        except SpecError as exc:      # a node name no resource can carry (too long, …)
            actions.append(Action(action="skipped", name=f"{prefix}{n.name}", node=n.name,
                                  detail=str(exc)))
            continue
        wanted[res.metadata.name] = (n.name, msgspec.to_builtins(res))
    items, _ = sink.list()
    have = {s.name: s for s in items}
    for name in sorted(wanted):
        node, doc = wanted[name]
        actions.append(_converge(sink, have.get(name), name, node, doc))
    known = {n.name for n in nodes}
    for s in sorted(items, key=lambda s: s.name):
        if _ours(s) and s.name.startswith(prefix) and s.name not in wanted \
                and _spec_of(s).get("node") not in known:
            actions.append(_delete(sink, s, "its node is gone"))
    return actions


def _converge(sink: Sink, current: Optional[Stored], name: str, node: str,
              doc: dict) -> Action:
    for _ in range(ATTEMPTS):
        if current is None:
            try:
                sink.create(doc)
                return Action(action="created", name=name, node=node)
            except ConflictError:             # created meanwhile: look at it
                current = _get(sink, name)
                continue
        if not _ours(current):
            return Action(action="skipped", name=name, node=node, detail=(
                "exists and was not created by `nodestatus cluster request`: left alone"))
        if _spec_of(current) == doc["spec"]:
            return Action(action="unchanged", name=name, node=node)
        meta = _dict(current.raw, "metadata")
        new = dict(current.raw, spec=doc["spec"],
                   metadata=dict(meta, labels=dict(_dict(meta, "labels"), **doc["metadata"]
                                                   ["labels"])))
        try:
            sink.replace(current, new)
            return Action(action="updated", name=name, node=node)
        except (ConflictError, NotFoundError):        # the status was written meanwhile
            current = _get(sink, name)
    raise ConflictError(f"CalicoNodeStatus {name!r} kept changing while it was being "
                        f"updated ({ATTEMPTS} attempts)")


def _get(sink: Sink, name: str) -> Optional[Stored]:
    try:
        return sink.get(name)
    except NotFoundError:
        return None


def _delete(sink: Sink, stored: Stored, why: str = "") -> Action:
    node = str(_spec_of(stored).get("node") or "")
    current: Optional[Stored] = stored
    for _ in range(ATTEMPTS):
        if current is None:
            return Action(action="deleted", name=stored.name, node=node,
                          detail="already gone")
        if not _ours(current):
            return Action(action="skipped", name=stored.name, node=node,
                          detail="no longer carries the cluster request label: left alone")
        try:
            sink.delete(current)
            return Action(action="deleted", name=stored.name, node=node, detail=why)
        except NotFoundError:
            current = None
        except ConflictError:                     # the agent wrote its status meanwhile
            current = _get(sink, stored.name)
    raise ConflictError(f"CalicoNodeStatus {stored.name!r} kept changing while it was "
                        f"being deleted ({ATTEMPTS} attempts)")


def delete_requested(sink: Sink, prefix: Optional[str] = None) -> List[Action]:
    """Delete every resource ``cluster request`` created (its label; with ``prefix``, only
    names starting with it), and nothing else."""
    items, _ = sink.list()
    return [_delete(sink, s) for s in sorted(items, key=lambda s: s.name)
            if _ours(s) and (prefix is None or s.name.startswith(prefix))]


def check_request(classes: Sequence[str], period: int, prefix: Optional[str]) -> None:
    """SpecError when what ``request`` is asked for can never be valid (before anything
    is read): the classes, the period, names made from ``prefix``."""
    requested_resource("node", classes, period, DEFAULT_PREFIX if prefix is None else prefix)

