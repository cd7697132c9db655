"""Did BIRD's best routes reach the kernel, and did anything else change them?

Compares the routes BIRD's kernel protocol exports with the kernel's table, both held in
the compact keyed form of ``_rtnl`` (bytes keys and values, compared in C); Python objects
are built only for the differences. Kernel dumps are not atomic under churn, so a route
monitor opened before the dump says which differences were touched meanwhile, and those
are checked again before anything is reported: prefix by prefix where the kernel's answers
prove enough, else with a second dump. Routes BIRD itself marks ``!`` (its best route,
refused by the kernel) are BIRD's own sync failures, reported apart.

This module only compares: BIRD's side is read by :mod:`.sources`, captured kernel tables
by :mod:`.iproute`, live ones by :mod:`.kernel`; reports are printed by :mod:`.render`.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import msgspec

from . import _rtnl
from .errors import InputError, NodeStatusError
from .status import source_type_by_name

__all__ = ("FibDiff", "FibFamilyReport", "FibReport", "protocol_rule", "fib_sink",
           "check_family", "check_fib")


class FibDiff(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One prefix where BIRD and the kernel disagree."""

    prefix: str
    #: missing (BIRD exports it, the kernel has no proto-bird route), extra (a proto-bird
    #: route BIRD does not export), mismatch (both, different forwarding), shadowed
    #: (another protocol's route for the prefix wins in the kernel)
    kind: str
    bird: Optional[dict] = None
    kernel: List[dict] = []
    reason: str = ""


class FibFamilyReport(msgspec.Struct, kw_only=True):
    family: int
    table: int
    netns: Optional[str] = None
    bird_source: str = ""
    bird_routes: int = 0
    kernel_routes: int = 0
    agree: int = 0
    missing: int = 0
    extra: int = 0
    mismatched: int = 0
    shadowed: int = 0
    #: BIRD's best routes it marks ``!``: its kernel protocol failed to install them
    sync_failed: List[str] = []
    #: prefixes whose next hop is on a link that is down: reported, not a mismatch
    linkdown: List[str] = []
    rechecked: int = 0
    #: of the re-checked differences, those a per-prefix lookup settled (no re-dump)
    settled_by_lookup: int = 0
    #: full dumps of the table made again for the others
    redumps: int = 0
    monitor_overflow: bool = False
    differences: List[FibDiff] = []
    seconds: float = 0.0

    @property
    def in_sync(self) -> bool:
        return not self.differences and not self.sync_failed


class FibReport(msgspec.Struct, kw_only=True):
    families: List[FibFamilyReport] = []
    in_sync: bool = True


# -------------------------------------------------------------------------- BIRD's side

Expected = Tuple[Dict[bytes, bytes], Dict[bytes, bytes], List[bytes]]


def protocol_rule(kernel_protocol: Optional[str] = None) -> Callable[[str, bool], bool]:
    """Whether a protocol's routes can be in the kernel table BIRD writes: not those of the
    kernel protocol itself (never exported back), and for BIRD 1.6 not the ``direct`` ones
    (its kernel protocol does not install them). Calico's names tell the protocols apart
    (``status.source_type_by_name``)."""
    def keep(name: str, bird2: bool) -> bool:
        kind = source_type_by_name(name)
        if name == kernel_protocol or (kernel_protocol is None and kind == "Kernel"):
            return False
        return bird2 or kind != "Direct"

    return keep


def fib_sink(ifindex: Dict[str, int], *, exported: bool,
             kernel_protocol: Optional[str] = None, bird2: Optional[bool] = None,
             merge_paths: bool = True):
    """A parser sink that packs BIRD's routes into ``{family: (expected {key: value},
    merged {key: alternative value}, sync_failed [key])}`` (its ``result()``), straight
    from the reply's bytes (rules: src/birdparse/sink_fib.pxi). ``exported``: the reply is
    ``show route export <kernel protocol>`` (exactly what BIRD sends); otherwise a plain
    ``show route [all]``, where the best route merged with equally good alternatives
    (Calico's ``merge paths on``) is accepted too."""
    from ._birdparse import fib_sink as _make

    return _make(dict(ifindex), protocol_rule(kernel_protocol), exported, bird2, merge_paths)


# -------------------------------------------------------------------------- the check

def _protocol(v: bytes) -> int:
    return _rtnl.value_fields(v)[1]


def _metric(v: bytes) -> int:
    return _rtnl.value_fields(v)[3]


def _classify(key: bytes, expected: Dict[bytes, bytes], merged: Dict[bytes, bytes],
              kernel: Mapping[bytes, "_rtnl.Value"]) -> Optional[FibDiff]:
    """A difference found by the fast compare, looked at closely; None if it is not one."""
    values = list(_rtnl.values_of(kernel[key])) if key in kernel else []
    bird_vals = [v for v in values if _protocol(v) == _rtnl.PROTO_BIRD]
    others = [v for v in values if _protocol(v) != _rtnl.PROTO_BIRD]
    want = expected.get(key)
    alt = merged.get(key)
    family = _rtnl.key_family(key)
    prefix = _rtnl.unpack_key(key)

    def show(v: bytes) -> dict:
        return _rtnl.describe(v, family)

    if want is not None and bird_vals:
        def same(v: bytes) -> bool:
            return _rtnl.in_sync(v, want) or (alt is not None and _rtnl.in_sync(v, alt))

        for v in sorted(bird_vals, key=_metric):
            if same(v):
                # another proto-bird route at a better metric forwards instead (`ip route
                # replace … proto bird` without BIRD's metric adds one): not in sync
                better = [b for b in bird_vals if _metric(b) < _metric(v) and not same(b)]
                if better:
                    b = min(better, key=_metric)
                    return FibDiff(prefix=prefix, kind="mismatch", bird=show(want),
                                   kernel=[show(x) for x in values],
                                   reason=f"a different proto bird route at metric {_metric(b)} "
                                          f"wins over BIRD's at metric {_metric(v)}")
                # in sync (merged ECMP form); shadowed if another protocol's route wins
                # and forwards differently (BIRD 2 exports connected routes the kernel
                # already has at metric 0: same forwarding, not a problem)
                winners = [o for o in others if _metric(o) <= _metric(v)
                           and not _rtnl.in_sync(o, v)]
                if winners:
                    return FibDiff(prefix=prefix, kind="shadowed", bird=show(want),
                                   kernel=[show(x) for x in values],
                                   reason="another protocol's route has a better or equal metric")
                return None
    described = [show(x) for x in values]
    if want is None:
        return FibDiff(prefix=prefix, kind="extra", kernel=described,
                       reason="proto bird route that BIRD does not export")
    if not bird_vals:
        if any(_rtnl.in_sync(o, want) for o in others):
            return None         # the kernel forwards the same way through another protocol
        if others:
            return FibDiff(prefix=prefix, kind="shadowed", bird=show(want),
                           kernel=described, reason="the prefix is owned by another protocol")
        return FibDiff(prefix=prefix, kind="missing", bird=show(want))
    return FibDiff(prefix=prefix, kind="mismatch", bird=show(want), kernel=described,
                   reason=_mismatch_reason(want, min(bird_vals, key=_metric), family))


def _mismatch_reason(want: bytes, got: bytes, family: int) -> str:
    w, g = _rtnl.describe(want, family), _rtnl.describe(got, family)
    if w["type"] != g["type"]:
        return f"type {g['type']} in the kernel, BIRD has {w['type']}"
    wn, gn = w["nexthops"], g["nexthops"]
    if len(wn) != len(gn):
        return f"{len(gn)} next hops in the kernel, BIRD has {len(wn)}"
    return "different gateway, interface or weight"


def _diffs(expected, merged, kernel) -> Tuple[Dict[bytes, FibDiff], List[bytes]]:
    """The differences, and the kernel's keys with a next hop whose link is down."""
    agree, missing, mismatched, extra = _rtnl.compare(expected, kernel)
    out: Dict[bytes, FibDiff] = {}
    for keys in (missing, mismatched, extra):
        for k in keys:
            d = _classify(k, expected, merged, kernel)
            if d is not None:
                out[k] = d
    # shadowing of routes the fast compare found in sync: only prefixes with several
    # kernel routes can be shadowed (found in C, with the link-down ones)
    multi, down = _rtnl.scan(kernel, expected)
    for k in multi:
        if k not in out:
            d = _classify(k, expected, merged, kernel)
            if d is not None:
                out[k] = d
    return out, down


#: Past this many suspect differences a re-check dumps the table again instead of asking
#: the kernel prefix by prefix (a lookup costs ~0.15 ms, a dump of 1M routes ~0.8 s).
MAX_LOOKUPS = 256


def _proven(key: bytes, seen: Tuple[bytes, ...], answer) -> Optional[Dict[bytes, bytes]]:
    """The kernel's values for a suspect prefix as a per-prefix lookup proves them (see
    ``kernel.FibMatch``), or None if it proves too little. ``seen``: the prefix's values as
    last known (the dump, or an earlier lookup).

    The lookup shows only the route that wins. A ``proto bird`` winner decides alone
    whether BIRD's route is in sync or not (:func:`_classify`: routes at worse metrics
    cannot shadow it). Nothing for the prefix confirms "missing" only where the dump saw
    nothing either (a lookup also passes over routes it cannot use). A winner of another
    protocol can stand beside BIRD's routes at worse metrics that the lookup does not show:
    that needs every value, as do shadowing and prefixes seen with several values."""
    if answer.verdict == "route" and _protocol(answer.value) == _rtnl.PROTO_BIRD:
        return {key: answer.value}
    if answer.verdict == "absent" and not seen:
        return {}
    return None


def _lookup_views(netlink, suspect, diffs: Dict[bytes, FibDiff], seen,
                  table: int) -> Optional[Dict[bytes, Dict[bytes, bytes]]]:
    """The kernel's values of every suspect prefix as per-prefix lookups prove them
    (:func:`_proven`), or None when one of them is not proven: then a dump settles them
    all, one snapshot for the whole round."""
    if any(diffs[k].kind == "shadowed" or len(seen(k)) > 1 for k in suspect):
        return None                  # needs every value of the prefix: not worth asking
    views: Dict[bytes, Dict[bytes, bytes]] = {}
    for key, answer in netlink.fib_match(sorted(suspect), table).items():
        view = _proven(key, seen(key), answer)
        if view is None:
            return None
        views[key] = view
    return views


def check_family(family: int, expected, merged, sync_failed: Sequence[bytes] = (), *,
                 table: int = 254, netns: Optional[str] = None, kernel_table=None,
                 netlink=None, bird_source: str = "", max_rounds: int = 3,
                 ifnames: Optional[Dict[int, str]] = None) -> FibFamilyReport:
    """Compare one family (``expected``/``merged``: packed tables of BIRD's side).

    ``kernel_table``: the kernel's table, captured (``netlink`` None: compared as it is)
    or dumped through ``netlink``, a ``kernel.Netlink`` whose route monitor for the family
    was opened before that dump: differences touched meanwhile are checked again, prefix
    by prefix where the kernel's answer settles them all (at most ``MAX_LOOKUPS``), else
    by dumping the table again; an overflowed monitor always means a new dump. Neither:
    a session is opened here and the table dumped now."""
    from . import kernel as kmod

    t0 = time.perf_counter()
    rep = FibFamilyReport(family=family, table=table, netns=netns, bird_source=bird_source,
                          bird_routes=len(expected) + len(sync_failed),
                          sync_failed=sorted(_rtnl.unpack_key(k) for k in sync_failed))
    own = None
    if kernel_table is None:
        netlink = own = kmod.Netlink(netns, monitor_families=(family,), with_links=False)
    try:
        kt = kernel_table if kernel_table is not None else netlink.dump(family, table)
        diffs, down = _diffs(expected, merged, kt.routes)
        monitor = netlink.monitors.get(family) if netlink is not None else None
        touched = monitor.changed_keys() if monitor is not None else set()
        looked_up: Dict[bytes, Tuple[bytes, ...]] = {}   # values proven since the last dump

        def seen(key: bytes) -> Tuple[bytes, ...]:
            if key in looked_up:
                return looked_up[key]
            return _rtnl.values_of(kt.routes[key]) if key in kt.routes else ()

        rounds = 0
        while monitor is not None and diffs and rounds < max_rounds:
            # IPv6 dumps under churn can skip untouched routes: re-check all then
            if touched is None or (family == 6 and touched):
                suspect = set(diffs)
                rep.monitor_overflow |= touched is None
            else:
                suspect = set(diffs) & touched
            if not suspect:
                break
            rounds += 1
            rep.rechecked += len(suspect)
            views = None
            if touched is not None and len(suspect) <= MAX_LOOKUPS:
                views = _lookup_views(netlink, suspect, diffs, seen, table)
            if views is not None:
                rep.settled_by_lookup += len(views)
                for k, view in views.items():
                    looked_up[k] = tuple(view.values())
                    # nothing left of a prefix BIRD does not export: no difference
                    d = _classify(k, expected, merged, view) if view or k in expected else None
                    if d is None:
                        diffs.pop(k, None)
                    else:
                        diffs[k] = d
            else:
                rep.redumps += 1
                kt2 = netlink.dump(family, table)
                again, down = _diffs(expected, merged, kt2.routes)
                for k in suspect:
                    if k in again:
                        diffs[k] = again[k]
                    else:
                        diffs.pop(k, None)
                kt = kt2
                looked_up.clear()
            touched = monitor.changed_keys()
        rep.kernel_routes = kt.n_routes
    finally:
        if own is not None:
            own.close()
    rep.differences = sorted(diffs.values(), key=lambda d: (d.kind, d.prefix))
    if ifnames:                                # interface names read better than indexes
        for d in rep.differences:
            for v in ([d.bird] if d.bird else []) + d.kernel:
                for h in v.get("nexthops", ()):
                    if h.get("oif") in ifnames:
                        h["dev"] = ifnames[h["oif"]]
    for d in rep.differences:
        if d.kind == "missing":
            rep.missing += 1
        elif d.kind == "extra":
            rep.extra += 1
        elif d.kind == "mismatch":
            rep.mismatched += 1
        else:
            rep.shadowed += 1
    rep.agree = max(0, len(expected) - rep.missing - rep.mismatched - rep.shadowed)
    rep.linkdown = sorted(_rtnl.unpack_key(k) for k in down)    # of the last dump
    rep.seconds = time.perf_counter() - t0
    return rep


def check_fib(*, socket: Optional[str] = None, routes_file: Optional[str] = None,
              netns: Optional[str] = None, table: int = 254,
              kernel_json: Sequence[str] = (), families: Sequence[int] = (4, 6),
              connect_timeout: float = 5.0, idle_timeout: float = 120.0,
              deadline: Optional[float] = None) -> FibReport:
    """Check BIRD's exported routes against the kernel table, per family.

    BIRD's side: a live control socket (``socket``; default Calico's then Debian's per
    family) or a capture of ``show route``/``show route export …`` (``routes_file``, read
    once). The kernel's side: a netlink dump (in ``netns`` if given) or ``ip -j route
    show`` captures (``kernel_json``; each route's family is its destination's).
    Raises :class:`InputError` for a capture that cannot be used and the ``Bird*`` errors
    for a daemon that does not answer; a node with no BIRD to ask is ``NodeStatusError``.
    """
    names: Dict[str, int] = {}
    tables = None
    netlink = pending = None
    if kernel_json:       # first: it names the interfaces both sides use
        from .iproute import kernel_tables

        tables = kernel_tables(kernel_json, names, table,
                               families[0] if len(families) == 1 else None)
        ifindex = names
    else:                 # the namespace entered once; the table dumped while BIRD is read
        from . import kernel as kmod

        netlink = kmod.Netlink(netns, monitor_families=families)
        ifindex = {name: idx for idx, (name, _flags) in netlink.links.items()}
        pending = netlink.dump_in_thread(families, table)
    try:
        return _check(netlink, pending, tables, ifindex,
                      socket=socket, routes_file=routes_file, netns=netns, table=table,
                      families=families, connect_timeout=connect_timeout,
                      idle_timeout=idle_timeout, deadline=deadline)
    finally:
        if pending is not None:
            pending.wait()            # its socket is closed only once the dump is over
        if netlink is not None:
            netlink.close()


def _check(netlink, pending, tables, ifindex: Dict[str, int], *, socket, routes_file, netns,
           table, families, connect_timeout, idle_timeout, deadline) -> FibReport:
    from . import sources
    from .birdsock import find_socket
    from .sources import DEFAULT_DEADLINE

    ifnames = {i: n for n, i in ifindex.items()}

    if routes_file is not None:
        birds = [(None, sources.fib_routes_capture(routes_file, ifindex))]
    else:
        paths = [socket] if socket else list(dict.fromkeys(
            p for p in (find_socket(4), find_socket(6)) if p))
        if not paths:
            raise NodeStatusError("no BIRD control socket found (looked for Calico's "
                                  "/var/run/calico/bird{,6}.ctl and Debian's "
                                  "/var/run/bird/bird{,6}.ctl): give --socket or --routes")
        birds = []
        for path in paths:
            for fam in families:
                got = sources.fib_routes_live(
                    path, fam, ifindex, connect_timeout=connect_timeout,
                    idle_timeout=idle_timeout, deadline=deadline or DEFAULT_DEADLINE)
                if got is not None:
                    birds.append((fam if got.bird2 else None, got))
                if got is None or not got.bird2:
                    break         # a BIRD 1.6 daemon has one kernel protocol, one family

    dumped = pending.result() if pending is not None else tables
    report = FibReport()
    for only, bird in birds:
        for fam in families:
            expected, merged, failed = bird.packed[fam]
            if only is not None and fam != only:
                continue
            if not (bird.bird2 or len(expected) or len(merged) or failed):
                continue      # a BIRD 1.6 daemon or capture answers for the other family
            if fam not in dumped:
                continue      # no captured kernel table of this family to compare with
            rep = check_family(fam, expected, merged, failed, table=table, netns=netns,
                               kernel_table=dumped[fam], netlink=netlink,
                               bird_source=bird.source, ifnames=ifnames)
            report.families.append(rep)
    if routes_file is not None and not report.families:
        raise InputError("holds no route BIRD would install in the kernel for the families "
                         "checked: nothing to compare", source=birds[0][1].source)
    report.in_sync = all(f.in_sync for f in report.families)
    return report
