"""Metrics (``nodestatus.metrics``) of a live BIRD 1.6.8 with 100k routes and 100 BGP peers:
the cost of one collection and of one scrape, and how many series a scrape holds.

One network namespace runs ``bird`` with 100k static routes and 100 Calico mesh peers
(``Mesh_10_0_1_N``; their addresses are held by nobody, so the sessions cycle through
Connect/Active as an unreachable peer's do), and ``bird6`` with a few routes. A collection is
what the exporter's thread does every period: ``collect_live`` with every class (BIRD prints
its table, we parse and map it) and the aggregation into a sample (``Metrics.collected``). A
scrape renders the last sample: it never talks to BIRD, so its cost depends on the peers and
protocols, not on the routes; it is measured in-process (``Metrics.render``) and over HTTP on
loopback through the agent's listener.

``NODESTATUS_BENCH_METRICS_ROUTES`` / ``…_PEERS`` change the sizes.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _benchlib import wait_for_routes  # noqa: E402
from tests.conftest import require as _require  # noqa: E402  (skip locally, fail in CI)

pytest.importorskip("prometheus_client")

from nodestatus.listener import Listener  # noqa: E402
from nodestatus.metrics import ALL_CLASSES, Metrics  # noqa: E402
from nodestatus.sources import collect_live  # noqa: E402

N_ROUTES = int(os.environ.get("NODESTATUS_BENCH_METRICS_ROUTES", "100000"))
N_PEERS = int(os.environ.get("NODESTATUS_BENCH_METRICS_PEERS", "100"))
GROUP = f"metrics {N_ROUTES // 1000}k routes, {N_PEERS} peers"
ROUNDS = 3
#: What the benches found, printed at the end of the module.
FOUND: dict = {}


def _peer(i: int) -> str:
    return f"10.0.{1 + i // 250}.{1 + i % 250}"


def _node_config() -> str:
    routes = "\n".join(
        f"  route 10.{100 + ((i >> 16) & 127)}.{(i >> 8) & 255}.{i & 255}/32 blackhole;"
        for i in range(N_ROUTES))
    peers = "\n".join(
        f"protocol bgp Mesh_{_peer(i).replace('.', '_')} {{\n  local 10.0.0.1 as 64512;\n"
        f"  neighbor {_peer(i)} as 64512;\n  connect delay time 5;\n  connect retry time 30;\n"
        "  import all;\n  export none;\n}" for i in range(N_PEERS))
    return f"""router id 10.0.0.1;
protocol device device1 {{ scan time 10; }}
protocol direct direct1 {{ interface "eth*"; }}
protocol kernel kernel1 {{ persist no; scan time 10; import none; export none; }}
protocol static static1 {{
{routes}
}}
{peers}
"""


def _node6_config() -> str:
    return """router id 10.0.0.1;
protocol device device1 { scan time 10; }
protocol kernel kernel1 { persist no; scan time 10; import none; export none; }
protocol static static1 {
  route fd10:244:1::/122 blackhole;
  route 2001:db8:12::/48 unreachable;
}
"""


@pytest.fixture(scope="module")
def live_node(tmp_path_factory, request):
    from tests.integration.fixtures.bird import BirdDaemon, require_bird
    from tests.integration.fixtures.netns import NetnsRegistry, require_netns

    require_netns(_require)
    require_bird(_require, "1.6")
    registry = NetnsRegistry(prefix="nsm")
    try:
        node, peer = registry.add("node"), registry.add("peer")
        registry.veth(node, "eth0", peer, "eth0")
        registry.addr(node, "eth0", "10.0.0.1/16", "fd00::1/64")
        workdir = tmp_path_factory.mktemp("metrics")
        bird6 = BirdDaemon(registry, node, "/usr/sbin/bird6", _node6_config(), workdir,
                           "bird6").start()
        bird = BirdDaemon(registry, node, "/usr/sbin/bird", _node_config(), workdir,
                          "bird").start(timeout=60)
        want = N_ROUTES + 1
        total = wait_for_routes(bird.socket_path, want, timeout=60)
        assert total == want, f"{total} routes, want {want}:\n{bird.output()}"
        yield bird.socket_path, bird6.socket_path
    finally:
        registry.cleanup()
        tr = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if tr is not None and capture is not None and FOUND:
            with capture.global_and_fixture_disabled():
                tr.write_line("")
                tr.write_line(f"{GROUP}: " + "; ".join(f"{k} {v}" for k, v in FOUND.items()))


def _collect(sockets):
    return collect_live(ALL_CLASSES, *sockets, idle_timeout=60)


@pytest.mark.benchmark(group=GROUP)
def bench_metrics_collection(benchmark, live_node):
    """One collection: BIRD's three replies, parsed, mapped and aggregated."""
    metrics = Metrics(30.0, process=False)
    samples = []

    def once():
        c, t = time.process_time(), time.perf_counter()
        v4, v6 = _collect(live_node)
        metrics.collected(v4, v6, time.perf_counter() - t)
        samples.append((time.perf_counter() - t, time.process_time() - c))
        return v4

    v4 = benchmark.pedantic(once, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    assert len(v4.routes) == N_ROUTES + 1
    wall, cpu = min(w for w, _ in samples), min(c for _, c in samples)
    v4, v6 = _collect(live_node)
    aggregate = []
    for _ in range(ROUNDS):                                   # the aggregation alone
        t = time.perf_counter()
        metrics.collected(v4, v6, 0.0)
        aggregate.append(time.perf_counter() - t)
    FOUND["collection"] = (f"{wall:.3f} s wall, {cpu:.3f} s CPU (of which aggregating "
                           f"{min(aggregate) * 1000:.1f} ms)")
    benchmark.extra_info.update(seconds=wall, cpu_s=cpu, aggregate_s=min(aggregate),
                                routes=N_ROUTES, peers=N_PEERS)


@pytest.mark.benchmark(group=GROUP)
def bench_metrics_scrape(benchmark, live_node):
    """One scrape of the last sample: in-process rendering, then over HTTP."""
    metrics = Metrics(30.0)
    v4, v6 = _collect(live_node)
    metrics.collected(v4, v6, 0.0)
    body = benchmark(metrics.render)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    peers = sum(1 for line in body.splitlines()
                if line.startswith(b'nodestatus_bgp_session_state{') and b'"Established"' in line)
    assert peers == N_PEERS
    listener = Listener("127.0.0.1", 0).route("/metrics", metrics.endpoint()).start()
    try:
        import http.client

        took = []
        conn = http.client.HTTPConnection(*listener.address, timeout=5)
        for _ in range(50):
            t = time.perf_counter()
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            got = resp.read()
            took.append(time.perf_counter() - t)
            assert resp.status == 200 and got
        conn.close()
    finally:
        listener.close()
    FOUND["scrape"] = (f"{len(body) / 1024:.0f} KiB, {series} series; HTTP on loopback "
                       f"median {statistics.median(took) * 1000:.1f} ms, max "
                       f"{max(took) * 1000:.1f} ms")
    benchmark.extra_info.update(series=series, body_bytes=len(body),
                                http_median_s=statistics.median(took), http_max_s=max(took))
