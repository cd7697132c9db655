"""Streaming from a live BIRD 1.6.8: how much of the time BIRD needs to emit 100k routes
does the parser's CPU take?

BIRD 1.6 needs 0.3-0.5 s to write `show route` for 100k routes over its socket; the
client parses each chunk as it arrives, so the parser must cost a small fraction of that.
Measured in one run: wall time of the whole query (BIRD's emission, our reads and
parsing), our process's CPU time over the same query, and the parse of the captured bytes
alone. The daemon runs in a network namespace this bench creates and removes.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodestatus import Route, parse  # noqa: E402
from nodestatus.birdsock import BirdClient  # noqa: E402

from _benchlib import LIVE, wait_for_routes  # noqa: E402
from tests.conftest import require as _require  # noqa: E402  (skip locally, fail in CI)

N_ROUTES = int(os.environ.get("NODESTATUS_BENCH_LIVE_ROUTES", "100000"))


@pytest.fixture(scope="module")
def live_bird(tmp_path_factory):
    from tests.integration.fixtures.bird import BirdConfig, BirdDaemon, require_bird
    from tests.integration.fixtures.netns import NetnsRegistry, require_netns

    require_netns(_require)
    require_bird(_require, "1.6")
    registry = NetnsRegistry(prefix="nsb")
    try:
        ns = registry.add("live")
        peer = registry.add("peer")
        registry.veth(ns, "eth0", peer, "eth0")
        registry.addr(ns, "eth0", "10.0.0.1/24")
        # 100k Calico-shaped routes in their own table: none of them go to the kernel.
        gws = [f"10.0.0.{i}" for i in range(2, 40)]
        routes = "\n".join(
            f"  route 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32 via {gws[i % len(gws)]};"
            for i in range(N_ROUTES))
        extra = f"table bulktab;\nprotocol static bulk {{\n  table bulktab;\n{routes}\n}}\n"
        cfg = BirdConfig(router_id="192.0.2.99", extra=extra)
        workdir = tmp_path_factory.mktemp("live")
        daemon = BirdDaemon(registry, ns, "/usr/sbin/bird", cfg.render("1.6", 4),
                            workdir, "bird").start(timeout=60)
        count = wait_for_routes(daemon.socket_path, N_ROUTES, "show route table bulktab count")
        assert count == N_ROUTES
        yield daemon
    finally:
        registry.cleanup()


def bench_live_show_route_stream(benchmark, live_bird):
    """One round: connect, `show route table bulktab`, parse while streaming."""
    sock = live_bird.socket_path
    samples = []

    def run():
        with BirdClient(sock, idle_timeout=120) as bird:
            c0, t0 = time.process_time(), time.perf_counter()
            n = sum(1 for r in bird.stream("show route table bulktab") if isinstance(r, Route))
            samples.append((time.perf_counter() - t0, time.process_time() - c0))
        assert n == N_ROUTES
        return n

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    # the same bytes, parsed alone (no socket, no BIRD)
    from tests.integration.fixtures.bird import query

    raw = query(sock, "show route table bulktab", timeout=120)
    t = time.perf_counter()
    parsed = parse(raw)
    parse_only = time.perf_counter() - t
    assert sum(isinstance(r, Route) for r in parsed) == N_ROUTES
    wall, cpu = min(samples)
    benchmark.extra_info.update(wall_s=wall, cpu_s=cpu, parse_only_s=parse_only,
                                bytes=len(raw), routes=N_ROUTES)
    LIVE.append(dict(name=f"BIRD 1.6.8 show route, {N_ROUTES:,} routes", wall=wall, cpu=cpu,
                     parse_only=parse_only, mb=len(raw) / 1e6))
