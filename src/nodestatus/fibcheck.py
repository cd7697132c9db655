"""Did BIRD's best routes reach the kernel, and did anything else change them?

Compares the routes BIRD's kernel protocol exports with the kernel's table, both held in
the compact keyed form of ``_rtnl`` (bytes keys and values, compared in C); Python objects
are built only for the differences. Kernel dumps are not atomic under churn, so a route
monitor opened before the dump says which differences were touched meanwhile, and those
are checked again before anything is reported.
"""
from __future__ import annotations

import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import msgspec

from . import _rtnl
from .errors import NodeStatusError
from .structs import Protocol, Route

__all__ = ("FibDiff", "FibFamilyReport", "FibReport", "expected_from_routes", "check_family",
           "check_fib", "summary_line")

RT_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibited": 8}
RTPROT_BIRD = 12


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
    #: prefixes whose next hop is on a link that is down: reported, not a mismatch
    linkdown: List[str] = []
    rechecked: int = 0
    monitor_overflow: bool = False
    differences: List[FibDiff] = []
    seconds: float = 0.0

    @property
    def in_sync(self) -> bool:
        return not self.differences


class FibReport(msgspec.Struct, kw_only=True):
    families: List[FibFamilyReport] = []
    in_sync: bool = True


# -------------------------------------------------------------------------- BIRD's side

def expected_from_routes(routes: Iterable[Route], ifindex: Dict[str, int], *, family: int,
                         exported: bool, kernel_protocol: Optional[str] = None,
                         bird2: bool = False, merge_paths: bool = True
                         ) -> Tuple[Dict[bytes, bytes], Dict[bytes, bytes]]:
    """BIRD's routes -> ({key: expected value}, {key: alternative expected value}).

    ``exported`` says the routes are ``show route export <kernel protocol>`` (exactly what
    BIRD sends). Otherwise they are a plain ``show route``: keep primary routes, drop
    those learned from the kernel protocol (never exported back) and, for BIRD 1.6, device
    routes (its kernel protocol does not install them); with ``merge_paths`` (Calico's
    kernel protocol) the primary route merged with equally good alternatives is accepted
    as the alternative form.
    """
    return _rtnl.expected_from(routes, dict(ifindex), family, exported, kernel_protocol,
                               bird2, merge_paths, Route)


# -------------------------------------------------------------------------- the check

def _kernel_values(kernel: Dict[bytes, object], key: bytes) -> List[bytes]:
    v = kernel.get(key)
    if v is None:
        return []
    return list(v) if isinstance(v, tuple) else [v]


def _classify(key: bytes, kind: str, expected: Dict[bytes, bytes], merged: Dict[bytes, bytes],
              kernel: Dict[bytes, object]) -> Optional[FibDiff]:
    """A difference found by the fast compare, looked at closely; None if it is not one."""
    values = _kernel_values(kernel, key)
    bird_vals = [v for v in values if v[1] == RTPROT_BIRD]
    others = [v for v in values if v[1] != RTPROT_BIRD]
    want = expected.get(key)
    alt = merged.get(key)
    if want is not None and bird_vals:
        def same(v: bytes) -> bool:
            return v[0] == want[0] and (v[8:] == want[8:] or (alt is not None and v[8:] == alt[8:]))

        for v in sorted(bird_vals, key=_metric):
            if same(v):
                # another proto-bird route at a better metric forwards instead (`ip route
                # replace … proto bird` without BIRD's metric adds one): not in sync
                better = [b for b in bird_vals if _metric(b) < _metric(v) and not same(b)]
                if better:
                    b = min(better, key=_metric)
                    return FibDiff(prefix=_rtnl.unpack_key(key), kind="mismatch",
                                   bird=_rtnl.describe(want, key[0]),
                                   kernel=[_rtnl.describe(x, key[0]) for x in values],
                                   reason=f"a different proto bird route at metric {_metric(b)} "
                                          f"wins over BIRD's at metric {_metric(v)}")
                # in sync (merged ECMP form); shadowed if another protocol's route wins
                # and forwards differently (BIRD 2 exports connected routes the kernel
                # already has at metric 0: same forwarding, not a problem)
                winners = [o for o in others if _metric(o) <= _metric(v)
                           and not (o[0] == v[0] and o[8:] == v[8:])]
                if winners:
                    return FibDiff(prefix=_rtnl.unpack_key(key), kind="shadowed",
                                   bird=_rtnl.describe(want, key[0]),
                                   kernel=[_rtnl.describe(x, key[0]) for x in values],
                                   reason="another protocol's route has a better or equal metric")
                return None
    prefix = _rtnl.unpack_key(key)
    described = [_rtnl.describe(x, key[0]) for x in values]
    if want is None:
        return FibDiff(prefix=prefix, kind="extra", kernel=described,
                       reason="proto bird route that BIRD does not export")
    if not bird_vals:
        if any(o[0] == want[0] and o[8:] == want[8:] for o in others):
            return None         # the kernel forwards the same way through another protocol
        if others:
            return FibDiff(prefix=prefix, kind="shadowed", bird=_rtnl.describe(want, key[0]),
                           kernel=described, reason="the prefix is owned by another protocol")
        return FibDiff(prefix=prefix, kind="missing", bird=_rtnl.describe(want, key[0]))
    return FibDiff(prefix=prefix, kind="mismatch", bird=_rtnl.describe(want, key[0]), kernel=described,
                   reason=_mismatch_reason(want, min(bird_vals, key=_metric), key[0]))


def _metric(v: bytes) -> int:
    return int.from_bytes(v[4:8], "little")


def _mismatch_reason(want: bytes, got: bytes, family: int) -> str:
    w, g = _rtnl.describe(want, family), _rtnl.describe(got, family)
    if w["type"] != g["type"]:
        return f"type {g['type']} in the kernel, BIRD has {w['type']}"
    wn, gn = w["nexthops"], g["nexthops"]
    if len(wn) != len(gn):
        return f"{len(gn)} next hops in the kernel, BIRD has {len(wn)}"
    return "different gateway, interface or weight"


def _diffs(expected, merged, kernel) -> Dict[bytes, FibDiff]:
    agree, missing, mismatched, extra = _rtnl.compare(expected, kernel)
    out: Dict[bytes, FibDiff] = {}
    for kind, keys in (("missing", missing), ("mismatch", mismatched), ("extra", extra)):
        for k in keys:
            d = _classify(k, kind, expected, merged, kernel)
            if d is not None:
                out[k] = d
    # shadowing of routes the fast compare found in sync: only prefixes with several
    # kernel routes can be shadowed (found in C, with the link-down ones)
    multi, _down = _rtnl.scan(kernel, expected)
    for k in multi:
        if k not in out:
            d = _classify(k, "agree", expected, merged, kernel)
            if d is not None:
                out[k] = d
    return out


def check_family(family: int, expected: Dict[bytes, bytes], merged: Dict[bytes, bytes], *,
                 table: int = 254, netns: Optional[str] = None, kernel_table=None,
                 bird_source: str = "", max_rounds: int = 3,
                 ifnames: Optional[Dict[int, str]] = None) -> FibFamilyReport:
    """Compare one family. ``kernel_table`` (a captured table) skips the live dump and the
    monitor; otherwise the table is dumped with a route monitor open, and differences that
    were touched during the dump are dumped and compared again."""
    from . import kernel as kmod

    t0 = time.perf_counter()
    rep = FibFamilyReport(family=family, table=table, netns=netns, bird_source=bird_source,
                          bird_routes=len(expected))
    if kernel_table is not None:
        routes = kernel_table.routes
        diffs = _diffs(expected, merged, routes)
        rep.kernel_routes = kernel_table.n_routes
    else:
        monitor = kmod.open_monitor(family, netns=netns)
        try:
            kt = kmod.dump_routes(family, table=table, netns=netns)
            touched = kmod.changed_keys(monitor)
            diffs = _diffs(expected, merged, kt.routes)
            rounds = 0
            while diffs and rounds < max_rounds:
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
                kt2 = kmod.dump_routes(family, table=table, netns=netns)
                touched = kmod.changed_keys(monitor)
                again = _diffs(expected, merged, kt2.routes)
                for k in suspect:
                    if k in again:
                        diffs[k] = again[k]
                    else:
                        diffs.pop(k, None)
                kt = kt2
            rep.kernel_routes = kt.n_routes
            routes = kt.routes
        finally:
            monitor.close()
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
    rep.linkdown = sorted(_rtnl.unpack_key(k) for k in _rtnl.scan(routes, {})[1])
    rep.seconds = time.perf_counter() - t0
    return rep


def render_fib(report: FibReport, fmt: str) -> str:
    """json / yaml / wide (a summary per family, then one line per difference)."""
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(report)).decode() + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(msgspec.to_builtins(report), sort_keys=False)
    out = [summary_line(report)]
    for f in report.families:
        where = f" in netns {f.netns}" if f.netns else ""
        out.append(f"IPv{f.family} table {f.table}{where}: BIRD {f.bird_routes} routes "
                   f"({f.bird_source}), kernel {f.kernel_routes}; re-checked {f.rechecked}"
                   + ("; monitor overflowed" if f.monitor_overflow else ""))
        for d in f.differences:
            bird = _hops_text(d.bird) if d.bird else "-"
            kern = "; ".join(_hops_text(k) for k in d.kernel) or "-"
            out.append(f"  {d.kind:<9} {d.prefix:<24} bird: {bird:<40} kernel: {kern}"
                       + (f"  ({d.reason})" if d.reason else ""))
        for p in f.linkdown:
            out.append(f"  linkdown  {p}")
    return "\n".join(out) + "\n"


def _hops_text(v: dict) -> str:
    if v.get("type") != "unicast":
        text = str(v.get("type"))
    else:
        text = ", ".join(
            (f"via {h['gateway']} " if h.get("gateway") else "")
            + (f"dev {h['dev']}" if h.get("dev") else f"oif {h.get('oif')}")
            + (f" w{h['weight']}" if h.get("weight", 1) != 1 else "") for h in v.get("nexthops", []))
    if "protocol" in v and v.get("protocol") not in (None, 12, "bird"):
        text += f" proto {v['protocol']}"
    if v.get("metric"):
        text += f" metric {v['metric']}"
    return text


def summary_line(report: FibReport) -> str:
    parts = []
    for f in report.families:
        state = "in sync" if f.in_sync else (
            f"{f.missing} missing, {f.extra} extra, {f.mismatched} mismatched, "
            f"{f.shadowed} shadowed")
        parts.append(f"IPv{f.family} {f.agree}/{f.bird_routes} agree ({state})")
    return "FIB check: " + "; ".join(parts)


# -------------------------------------------------------------------------- sources

class _JsonTable(msgspec.Struct):
    """A kernel table read from ``ip -j route show`` output (offline check)."""

    routes: dict
    n_routes: int


_JSON_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8}
_JSON_PROTOS = {"bird": 12, "kernel": 2, "boot": 3, "static": 4, "dhcp": 16}


def _json_family(data: bytes) -> int:
    for row in msgspec.json.decode(data):
        for field in ("dst", "gateway", "prefsrc"):
            v = row.get(field) or ""
            if v not in ("", "default"):
                return 6 if ":" in v else 4
    return 4


_TABLE_NAMES = {"main": 254, "local": 255, "default": 253}


def kernel_table_from_json(data: bytes, family: int, names: Dict[str, int],
                           table: int = 254) -> _JsonTable:
    """``ip -j route show`` -> the compact form; interface names get indexes from
    ``names`` (shared with BIRD's side, so both agree on them)."""
    rows = msgspec.json.decode(data)
    out: Dict[bytes, object] = {}
    n = 0
    for row in rows:
        t = row.get("table", "main")
        if _TABLE_NAMES.get(t, int(t) if str(t).isdigit() else -1) != table:
            continue
        dst = row.get("dst", "")
        if dst == "default":
            dst = "0.0.0.0/0" if family == 4 else "::/0"
        elif "/" not in dst:
            dst += "/32" if family == 4 else "/128"
        if (":" in dst) != (family == 6):
            continue
        rtype = _JSON_TYPES.get(row.get("type", "unicast"))
        if rtype is None:
            continue
        hops = []
        if rtype == 1:
            for h in row.get("nexthops") or [row]:
                dev = h.get("dev")
                oif = names.setdefault(dev, len(names) + 1) if dev else 0
                hops.append((h.get("gateway"), oif, int(h.get("weight", 1))))
        key, val = _rtnl.pack_expected(dst, rtype, hops)
        val = bytearray(val)
        proto = row.get("protocol", "boot")
        val[1] = _JSON_PROTOS.get(proto, int(proto) if str(proto).isdigit() else 0)
        val[4:8] = int(row.get("metric", 0)).to_bytes(4, "little")
        flags = row.get("flags") or []
        val[2] = (1 if "linkdown" in flags else 0) | (2 if "onlink" in flags else 0)
        old = out.get(key)
        out[key] = bytes(val) if old is None else (
            (old if isinstance(old, tuple) else (old,)) + (bytes(val),))
        n += 1
    return _JsonTable(routes=out, n_routes=n)


def _kernel_protocols(protocols: Sequence[Protocol], family: int, bird2: bool) -> List[str]:
    names = []
    for p in protocols:
        if p.proto != "Kernel":
            continue
        if bird2 and p.table and not p.table.endswith(str(family)):
            continue
        names.append(p.name)
    return names


def _live_routes(socket_path: str, family: int, *, connect_timeout: float, idle_timeout: float):
    """(routes iterator owner, exported flag, kernel protocol, bird2) from a live BIRD."""
    from .birdsock import BirdClient
    from .structs import Route

    client = BirdClient(socket_path, connect_timeout=connect_timeout, idle_timeout=idle_timeout)
    client.connect()
    protocols = [r for r in client.query("show protocols") if isinstance(r, Protocol)]
    bird2 = client.is_bird2
    kprotos = _kernel_protocols(protocols, family, bird2)
    if not kprotos:
        client.close()
        return None
    kproto = kprotos[0]
    # what the kernel protocol really exports (merged multipath included)
    cmd = f"show route export '{kproto}'" if not kproto.isidentifier() else f"show route export {kproto}"

    def routes():
        with client:
            for r in client.stream(cmd):
                if isinstance(r, Route):
                    yield r

    return routes(), True, kproto, bird2


def _records(path: str):
    """All records of a capture, chunk by chunk (no per-record generator frame)."""
    import itertools

    from .records import CHUNK, Parser, open_capture

    def chunks():
        parser = Parser()
        try:
            with open_capture(path) as f:
                while True:
                    data = f.read(CHUNK)
                    if not data:
                        break
                    yield parser.feed(data)
                yield parser.close()
        except NodeStatusError as exc:
            if hasattr(exc, "with_source"):
                exc.with_source(path)
            raise

    return itertools.chain.from_iterable(chunks())


def check_fib(*, socket: Optional[str] = None, routes_file: Optional[str] = None,
              netns: Optional[str] = None, table: int = 254,
              kernel_json: Sequence[str] = (), families: Sequence[int] = (4, 6),
              connect_timeout: float = 5.0, idle_timeout: float = 120.0) -> FibReport:
    """Check BIRD's exported routes against the kernel table, per family.

    BIRD's side: a live control socket (``socket``; default Calico's then Debian's per
    family) or a capture of ``show route``/``show route export …`` (``routes_file``).
    The kernel's side: a netlink dump (in ``netns`` if given) or ``ip -j route show``
    captures (``kernel_json``; the family is read from the content).
    """
    from .birdsock import find_socket
    from .records import iter_records
    from .sources import is_bird2_version
    from .structs import Banner, BirdStatus
    from .structs import Route as _Route

    report = FibReport()
    json_tables: Dict[int, bytes] = {}
    for path in kernel_json:
        with open(path, "rb") as f:
            data = f.read()
        json_tables[_json_family(data)] = data
    for family in families:
        if kernel_json and family not in json_tables:
            continue
        names: Dict[str, int] = {}
        kt = None
        if family in json_tables:   # first: it names the interfaces both sides use
            kt = kernel_table_from_json(json_tables[family], family, names, table)
        if routes_file:
            bird2 = False
            kproto = None
            for rec in iter_records(routes_file):
                if isinstance(rec, (Banner, BirdStatus)) and rec.version:
                    bird2 = is_bird2_version(rec.version)
                if isinstance(rec, _Route) and rec.table:
                    bird2 = True
                if isinstance(rec, _Route):
                    break
            routes = _records(routes_file)     # other record types are skipped in C
            exported, source = False, routes_file
        else:
            path = socket or find_socket(family)
            if path is None:
                continue
            live = _live_routes(path, family, connect_timeout=connect_timeout,
                                idle_timeout=idle_timeout)
            if live is None:
                continue
            routes, exported, kproto, bird2 = live
            source = path
        if family in json_tables:
            ifindex = names
        else:
            from . import kernel as kmod
            ifindex = {name: idx for idx, (name, _flags) in kmod.links(netns=netns).items()}
        expected, merged = expected_from_routes(routes, ifindex, family=family,
                                                exported=exported, kernel_protocol=kproto,
                                                bird2=bird2)
        shared = routes_file is not None or socket is not None
        if shared and not bird2 and not expected:
            continue    # a BIRD 1.6 daemon/capture answers for the other family only
        ifnames = {i: n for n, i in ifindex.items()}
        if kt is not None:
            ifnames = {i: n for n, i in names.items()}
            rep = check_family(family, expected, merged, table=table, netns=netns,
                               kernel_table=kt, bird_source=source, ifnames=ifnames)
        else:
            rep = check_family(family, expected, merged, table=table, netns=netns,
                               bird_source=source, ifnames=ifnames)
        report.families.append(rep)
    report.in_sync = all(f.in_sync for f in report.families)
    return report
