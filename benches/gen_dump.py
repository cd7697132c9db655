"""Seeded, realistic BIRD 1.6 control-socket dumps of ``show route [all]`` for the benches.

The bytes are exactly what ``bird`` (1.6) writes on its control socket (``nest/cli.c
cli_printf``): ``DDDD-`` when the reply code changes, a one-space continuation prefix while it
stays the same, one final ``0000 `` line. Route lines follow ``rt_show_rte`` (net padded to 18
columns, alternatives with an all-blank net column, 1.6 ``multipath`` + ``\\tvia … weight W``),
``show route all`` adds ``\\tType:`` (1008) and attribute lines (1012), community lists wrap on
``\\t\\t`` lines exactly as ``ea_show_int_set`` / ``int_set_format`` do.

Shapes:

* ``calico`` — a Calico node's table: /26 IPAM blocks and borrowed /32s via full-mesh peers
  (``Mesh_10_0_0_X``, ``(100/0) [i]``), alternatives via a second peer, ECMP ``multipath``
  static routes, and this node's own blocks: blackhole /26s and ``dev caliXXXXXXXXXXX``
  workload routes (kernel1). The node's own workloads are bounded by its pod limit
  (``LOCAL_PODS``, kubelet's default ``maxPods``), not by the table size: a bigger cluster
  means more remote routes, never 400k pods on one node (version 1 of this generator made
  10% of all blocks local, which no real node has).
* ``calico6`` — the same on bird6 (IPv6 nets longer than 18 chars are not padded).
* ``fulltable`` — an Internet-like IPv4 table from eBGP peers and a route reflector: /8–/24,
  1–3 paths per prefix, 3–12 ASN paths with prepends and trailing AS_SETs, communities,
  large communities and MED.

``generate(shape, n_routes, detail, seed)`` returns the bytes (``n_routes`` = number of route
lines, alternatives included) and caches them under ``benches/.cache/``.

    python benches/gen_dump.py calico 100000 --all --seed 1 -o /tmp/dump.raw
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import List, Tuple

__all__ = ("SHAPES", "generate", "generate_uncached", "cache_path")

#: Bump when the output of a given (shape, n, detail, seed) changes: invalidates the cache.
GEN_VERSION = 2
SHAPES = ("calico", "calico6", "fulltable")
CACHE_DIR = Path(__file__).resolve().parent / ".cache"

Line = Tuple[int, str]  # (reply code, payload without the 5-byte prefix)
RouteLines = List[Line]


# --------------------------------------------------------------------------- framing


def _frame(nets: List[List[RouteLines]], detail: bool) -> bytes:
    """1.6 ``cli_printf``: code printed only when it differs from the previous line's."""
    out: List[str] = []
    append = out.append
    prev = -1
    for routes in nets:
        for route in routes:
            for code, payload in route:
                if not detail and code != 1007:
                    continue
                if code == prev:
                    append(" " + payload)
                else:
                    append("%04d-%s" % (code, payload))
                    prev = code
    append("0000 ")
    append("")
    return "\n".join(out).encode("ascii")


def _net_col(net: str) -> str:
    """``%-18s `` (IPv6 nets longer than 18 chars are followed by one space only)."""
    return "%-18s " % net


BLANK_NET = " " * 19

#: Workloads on this node (kubelet's default ``maxPods``) and the blocks holding them.
LOCAL_PODS = 110
LOCAL_BLOCKS = 4


# ------------------------------------------------------- attribute text, BIRD 1.6 rt-attr.c

CLI_MSG_SIZE = 500


def _set_lines(head: str, items: List[str], reserve: int) -> List[str]:
    """``ea_show_int_set``/``ea_show_lc_set``: ``head`` + items while the write position is
    at most ``size - reserve`` bytes into the 500-byte buffer; the rest on ``\\t\\t`` lines
    (whose buffer is one byte shorter)."""
    lines: List[str] = []
    buf = head
    limit = CLI_MSG_SIZE - reserve  # first call: end = pos + (500 - len(head)) - reserve
    first = True
    i = 0
    n = len(items)
    start = 0
    while i < n:
        if len(buf) > limit:
            lines.append(("\t" if first else "\t\t") + buf)
            first = False
            buf = ""
            limit = CLI_MSG_SIZE - 1 - reserve
            start = i
            continue
        if i > start:
            buf += " "
        buf += items[i]
        i += 1
    lines.append(("\t" if first else "\t\t") + buf)
    return lines


def _as_path_text(path: List[object]) -> str:
    parts = []
    for seg in path:
        if isinstance(seg, tuple):  # AS_SET, 1.6 prints "{ 1 2 }"
            parts.append("{ " + " ".join(str(a) for a in seg) + " }")
        else:
            parts.append(str(seg))
    return " ".join(parts)


def _bgp_tag(path: List[object], origin: str) -> str:
    """``bgp_get_route_info``: ``[AS<last of a trailing sequence><o>]``."""
    if path and not isinstance(path[-1], tuple):
        return " [AS%d%s]" % (path[-1], origin)
    return " [%s]" % origin


ORIGIN_WORD = {"i": "IGP", "e": "EGP", "?": "Incomplete"}


def _times(rng: random.Random, k: int, dates: bool = False) -> List[str]:
    out = []
    for _ in range(k):
        if dates and rng.random() < 0.6:
            out.append("2026-%02d-%02d" % (rng.randint(1, 11), rng.randint(1, 28)))
        else:
            out.append("%02d:%02d:%02d" % (rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)))
    return out


# --------------------------------------------------------------------------- calico


def _calico(rng: random.Random, n: int, v6: bool) -> List[List[RouteLines]]:
    npeers = max(3, min(250, n // 2000))
    if v6:
        peers = ["fd00::%x" % (i + 2) for i in range(npeers)]
        pnames = ["Mesh_fd00__%x" % (i + 2) for i in range(npeers)]
        lladdr = ["fe80::%x:ff:fe00:%x" % (i + 2, i + 2) for i in range(npeers)]
    else:
        peers = ["10.0.0.%d" % (i + 2) for i in range(npeers)]
        pnames = ["Mesh_10_0_0_%d" % (i + 2) for i in range(npeers)]
        lladdr = []
    ptime = _times(rng, npeers)
    st_time, k_time = "06:22:11", "06:22:12"
    t_bgp = (1008, "\tType: BGP unicast univ")
    t_static = (1008, "\tType: static unicast univ")
    t_kernel = (1008, "\tType: inherit unicast univ")
    hexd = "0123456789abcdef"

    def bgp_route(net: str, p: int, best: bool) -> RouteLines:
        nh = peers[p] if not v6 else "%s %s" % (peers[p], lladdr[p])
        return [
            (1007, "%svia %s on eth0 [%s %s]%s (100/0) [i]" % (
                net, peers[p], pnames[p], ptime[p], " *" if best else "")),
            t_bgp,
            (1012, "\tBGP.origin: IGP"),
            (1012, "\tBGP.as_path: "),
            (1012, "\tBGP.next_hop: " + nh),
            (1012, "\tBGP.local_pref: 100"),
        ]

    if v6:
        base = int(ipaddress.IPv6Address("fd00:10:244::"))

        def addr(b: int, off: int) -> str:
            return str(ipaddress.IPv6Address(base + (b << 6) + off))

        blen, hlen = 122, 128
    else:
        base = int(ipaddress.IPv4Address("10.16.0.0"))

        def addr(b: int, off: int) -> str:
            a = base + (b << 6) + off
            return "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)

        blen, hlen = 26, 32

    nets: List[List[RouteLines]] = []
    count = 0
    b = 0
    local_left = LOCAL_PODS
    # this node's blocks are spread through the table: one every n / (2 * LOCAL_BLOCKS) blocks
    local_every = max(1, n // (LOCAL_BLOCKS * 2))
    while count < n:
        r = rng.random()
        groups: List[List[RouteLines]] = []
        block = "%s/%d" % (addr(b, 0), blen)
        if local_left > 0 and b % local_every == local_every // 2:
            # a block affine to this node: blackhole + workload /32s (kernel1)
            groups.append([[
                (1007, "%sblackhole [static1 %s] * (200)" % (_net_col(block), st_time)),
                t_static,
            ]])
            pods = min(local_left, -(-LOCAL_PODS // LOCAL_BLOCKS))
            local_left -= pods
            for off in rng.sample(range(64), pods):
                iface = "cali" + "".join(rng.choice(hexd) for _ in range(11))
                groups.append([[
                    (1007, "%sdev %s [kernel1 %s] * (10)" % (
                        _net_col("%s/%d" % (addr(b, off), hlen)), iface, k_time)),
                    t_kernel,
                    (1012, "\tKernel.source: 3"),
                    (1012, "\tKernel.metric: 1024"),
                ]])
        elif r < 0.02:  # ECMP static route towards several nodes (1.6 multipath)
            hops = rng.sample(range(npeers), rng.randint(2, min(4, npeers)))
            route = [(1007, "%smultipath [static1 %s] * (200)" % (_net_col(block), st_time))]
            route += [(1007, "\tvia %s on eth0 weight 1" % peers[h]) for h in hops]
            route.append(t_static)
            groups.append([route])
        else:  # a remote node's block, maybe advertised twice; maybe borrowed /32s
            p = rng.randrange(npeers)
            routes = [bgp_route(_net_col(block), p, True)]
            if rng.random() < 0.15:
                routes.append(bgp_route(BLANK_NET, (p + 1 + rng.randrange(npeers - 1)) % npeers, False))
            groups.append(routes)
            if rng.random() < 0.35:
                for off in rng.sample(range(64), rng.randint(1, 4)):
                    q = rng.randrange(npeers)
                    groups.append([bgp_route(_net_col("%s/%d" % (addr(b, off), hlen)), q, True)])
        b += 1
        for routes in groups:
            if count + len(routes) > n:
                routes = routes[: n - count]
            if routes:
                nets.append(routes)
                count += len(routes)
            if count >= n:
                break
    rng.shuffle(nets)  # BIRD dumps in FIB hash order
    return nets


# --------------------------------------------------------------------------- full table

_PREFIX_LENS = [24] * 55 + [23] * 10 + [22] * 11 + [21] * 5 + [20] * 5 + [19] * 4 + [18] * 3 + \
    [17] * 2 + [16] * 3 + [15, 14, 13, 12, 11, 10, 9, 8]


def _fulltable(rng: random.Random, n: int) -> List[List[RouteLines]]:
    # (protocol, neighbour, peer AS, ebgp)
    peers = [
        ("bgp1", "192.0.2.1", 13335, True),
        ("bgp2", "198.51.100.1", 174, True),
        ("bgp3", "203.0.113.1", 3356, True),
        ("rr1", "192.0.2.254", 65000, False),
    ]
    ptime = _times(rng, len(peers), dates=True)
    igp_gws = ["192.0.2.%d" % i for i in range(9, 13)]
    pool = [rng.randint(1, 64000) for _ in range(3000)] + \
        [rng.randint(131072, 400000) for _ in range(1500)] + \
        [rng.randint(4200000000, 4294967294) for _ in range(100)]
    transit = [174, 3356, 1299, 6939, 2914, 3257, 6762, 6453, 7018, 6461, 9002, 1273]
    t_bgp = (1008, "\tType: BGP unicast univ")
    seen = set()
    nets: List[List[RouteLines]] = []
    count = 0
    while count < n:
        plen = rng.choice(_PREFIX_LENS)
        a = rng.randint(0x01000000, 0xDFFFFFFF)
        if (a >> 24) in (10, 127):
            continue
        a &= (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        key = (a << 6) | plen
        if key in seen:
            continue
        seen.add(key)
        net = "%d.%d.%d.%d/%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, plen)
        k = min(rng.choice((1, 1, 2, 2, 3)), n - count)
        # the prefix's origin part of the path, shared by all paths
        olen = rng.randint(1, 6)
        tail: List[object] = [rng.choice(pool) for _ in range(olen)]
        if rng.random() < 0.15:  # origin prepends
            tail.extend([tail[-1]] * rng.randint(1, 3))
        if rng.random() < 0.03:  # aggregated: trailing AS_SET
            tail.append(tuple(sorted(set(rng.sample(pool, rng.randint(2, 4))))))
        origin = "i" if rng.random() < 0.85 else ("?" if rng.random() < 0.9 else "e")
        routes: List[RouteLines] = []
        for j, pi in enumerate(rng.sample(range(len(peers)), k)):
            proto, nbr, pas, ebgp = peers[pi]
            mid = [rng.choice(transit) for _ in range(rng.randint(0, 3))]
            path = ([pas] if ebgp else []) + mid + tail
            while len(path) > 12:
                path.pop(1)
            if ebgp:
                gw, frm, info, nh = nbr, "", "(100)", nbr
                lp = 100
            else:
                gw = rng.choice(igp_gws)
                nh = "198.18.%d.%d" % (rng.randint(0, 255), rng.randint(1, 254))
                frm, info = " from " + nbr, "(100/%d)" % rng.choice((10, 20, 30))
                lp = rng.choice((100, 100, 200, 80))
            route = [(1007, "%svia %s on eth0 [%s %s%s]%s %s%s" % (
                _net_col(net) if j == 0 else BLANK_NET, gw, proto, ptime[pi], frm,
                " *" if j == 0 else "", info, _bgp_tag(path, origin))), t_bgp,
                (1012, "\tBGP.origin: " + ORIGIN_WORD[origin]),
                (1012, "\tBGP.as_path: " + _as_path_text(path)),
                (1012, "\tBGP.next_hop: " + nh)]
            if rng.random() < 0.3:
                route.append((1012, "\tBGP.med: %d" % rng.choice((0, 10, 50, 100, 2000))))
            route.append((1012, "\tBGP.local_pref: %d" % lp))
            r = rng.random()
            nc = rng.randint(30, 90) if r < 0.01 else (0 if r < 0.3 else rng.randint(1, 20))
            if nc:
                comms = ["(%d,%d)" % (rng.choice((65000, pas if pas < 65536 else 65000, 174, 3356)),
                                      rng.randint(0, 65535)) for _ in range(nc)]
                for text in _set_lines("BGP.community: ", comms, 24):
                    route.append((1012, text))
            if rng.random() < 0.1:
                lcs = ["(%d, %d, %d)" % (rng.choice((4200000000, 65000, pas)), rng.randint(0, 9),
                                         rng.randint(0, 99999)) for _ in range(rng.randint(1, 4))]
                for text in _set_lines("BGP.large_community: ", lcs, 64):
                    route.append((1012, text))
            routes.append(route)
        nets.append(routes)
        count += len(routes)
    return nets


# --------------------------------------------------------------------------- API


def _nets(shape: str, n_routes: int, seed: int) -> List[List[RouteLines]]:
    rng = random.Random(seed)
    if shape == "calico":
        return _calico(rng, n_routes, False)
    if shape == "calico6":
        return _calico(rng, n_routes, True)
    if shape == "fulltable":
        return _fulltable(rng, n_routes)
    raise ValueError("unknown shape %r (one of %s)" % (shape, ", ".join(SHAPES)))


def generate_uncached(shape: str, n_routes: int, detail: bool, seed: int = 1) -> bytes:
    """Build the dump; same arguments → same bytes (one ``random.Random(seed)``). The
    ``show route`` dump is the ``show route all`` one without its 1008/1012 lines."""
    return _frame(_nets(shape, n_routes, seed), detail)


def cache_path(shape: str, n_routes: int, detail: bool, seed: int = 1) -> Path:
    kind = "all" if detail else "route"
    return CACHE_DIR / ("v%d-%s-%s-%d-seed%d.raw" % (GEN_VERSION, shape, kind, n_routes, seed))


def _store(path: Path, data: bytes) -> None:
    try:
        CACHE_DIR.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=CACHE_DIR, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: concurrent runs never see half a file
    except OSError:
        pass


def generate(shape: str, n_routes: int, detail: bool, seed: int = 1) -> bytes:
    """``generate_uncached`` behind an on-disk cache (``benches/.cache/``, gitignored).
    A miss builds the routes once and stores both the ``show route`` and the ``all`` dump."""
    path = cache_path(shape, n_routes, detail, seed)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    nets = _nets(shape, n_routes, seed)
    data = _frame(nets, detail)
    _store(path, data)
    other = cache_path(shape, n_routes, not detail, seed)
    if not other.exists():
        _store(other, _frame(nets, not detail))
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shape", choices=SHAPES)
    ap.add_argument("n_routes", type=int)
    ap.add_argument("--all", dest="detail", action="store_true", help="`show route all`")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", help="file to write (default: stdout)")
    args = ap.parse_args(argv)
    data = generate(args.shape, args.n_routes, args.detail, args.seed)
    print("gen_dump: shape=%s routes=%d detail=%s seed=%d bytes=%d" % (
        args.shape, args.n_routes, args.detail, args.seed, len(data)), file=sys.stderr)
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
