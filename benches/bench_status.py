"""CalicoNodeStatus from a live BIRD 1.6.8 holding 100k routes: nodestatus vs. Calico's way.

One network namespace runs the node's ``bird`` (100k static routes in the main table, the
kernel protocol exporting nothing, five Calico peers: four ``Mesh_`` iBGP and one ``Global_``
eBGP session) and ``bird6`` (a few IPv6 routes); a second namespace runs one BIRD per peer
that holds the other end of its session (all Established) and announces eight /26 blocks, so the node's table also has BGP routes with alternatives.

Both implementations build the whole status (Agent, BGP, Routes, both families) in the same
run and group: ``collect_live`` + ``build_status`` (one connection per daemon, pipelined
queries, one ``show protocols all``, routes mapped while they stream) against
``baselines.calico_way`` (Calico's populators: a connection per class, N+1 protocol queries,
a regex per route line). ``test_same_status`` checks both give the same peers and routes.

Wall time includes BIRD writing the 100k-route reply (printed alone for reference), which
bounds both; our process's CPU time is printed next to it.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodestatus.birdtime import same_instant  # noqa: E402
from nodestatus.resource import CalicoNodeStatus, CalicoNodeStatusSpec, ObjectMeta  # noqa: E402
from nodestatus.sources import collect_live  # noqa: E402
from nodestatus.status import build_status  # noqa: E402

from _benchlib import STATUS_LIVE, _size_label, wait_for_routes  # noqa: E402
from baselines import calico_way  # noqa: E402
from tests.conftest import require as _require  # noqa: E402  (skip locally, fail in CI)

N_ROUTES = int(os.environ.get("NODESTATUS_BENCH_STATUS_ROUTES", "100000"))
GROUP = f"status assembly {_size_label(N_ROUTES)} live"
CLASSES = ["Agent", "BGP", "Routes"]
ROUNDS = 3
#: (protocol name on the node, peer address, peer AS); the node is 10.0.0.1, AS 64512.
PEERS = [(f"Mesh_10_0_0_{i}", f"10.0.0.{i}", 64512) for i in range(2, 6)] + [
    ("Global_10_0_0_6", "10.0.0.6", 64513)]
BLOCKS = [f"192.168.{i}.0/26" for i in range(8)]
V6_ROUTES = ["route fd10:244:1::/122 blackhole;", "route 2001:db8:12::/48 unreachable;",
             "route 2001:db8:10::/48 via fd00::2;"]

#: impl -> (status, min seconds); the equivalence test reuses what the benches built.
_BUILT: dict = {}


def _node_config() -> str:
    gws = [f"10.0.0.{i}" for i in range(2, 40)]
    routes = "\n".join(
        f"  route 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32 via {gws[i % len(gws)]};"
        for i in range(N_ROUTES))
    peers = "\n".join(
        f"protocol bgp {name} {{\n  local 10.0.0.1 as 64512;\n  neighbor {ip} as {asn};\n"
        f"  connect delay time 1;\n  import all;\n  export none;\n}}"
        for name, ip, asn in PEERS)
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
    routes = "\n".join(f"  {r}" for r in V6_ROUTES)
    return f"""router id 10.0.0.1;
protocol device device1 {{ scan time 10; }}
protocol direct direct1 {{ interface "eth*"; }}
protocol kernel kernel1 {{ persist no; scan time 10; import none; export none; }}
protocol static static1 {{
{routes}
}}
"""


def _peer_config(ip: str, asn: int) -> str:
    """One BIRD per peer (BIRD 1.6 tells incoming sessions apart by remote address only)."""
    blocks = "\n".join(f"  route {b} blackhole;" for b in BLOCKS)
    return f"""router id {ip};
listen bgp address {ip};
protocol device {{ scan time 10; }}
protocol static blocks {{
{blocks}
}}
protocol bgp node {{
  local {ip} as {asn};
  neighbor 10.0.0.1 as 64512;
  connect delay time 1;
  import none;
  export all;
}}
"""


@pytest.fixture(scope="module")
def live_node(tmp_path_factory, request):
    from tests.integration.fixtures.bird import BirdDaemon, query, require_bird
    from tests.integration.fixtures.netns import NetnsRegistry, require_netns

    require_netns(_require)
    require_bird(_require, "1.6")
    registry = NetnsRegistry(prefix="nss")
    try:
        node, peer = registry.add("node"), registry.add("peer")
        registry.veth(node, "eth0", peer, "eth0")
        registry.addr(node, "eth0", "10.0.0.1/24", "fd00::1/64")
        registry.addr(peer, "eth0", *[f"{ip}/24" for _, ip, _ in PEERS])
        workdir = tmp_path_factory.mktemp("status")
        for _, ip, asn in PEERS:
            BirdDaemon(registry, peer, "/usr/sbin/bird", _peer_config(ip, asn), workdir,
                       "peer" + ip.rsplit(".", 1)[1]).start()
        bird6 = BirdDaemon(registry, node, "/usr/sbin/bird6", _node6_config(), workdir,
                           "bird6").start()
        bird = BirdDaemon(registry, node, "/usr/sbin/bird", _node_config(), workdir,
                          "bird").start(timeout=60)
        # every static route, the connected /24 and each block from each peer
        want = N_ROUTES + 1 + len(BLOCKS) * len(PEERS)
        total = wait_for_routes(bird.socket_path, want, timeout=30)
        assert total == want, f"{total} routes, want {want}:\n{bird.output()}"
        # reference: BIRD writing `show route` with the client only reading the bytes
        alone = []
        for _ in range(1 if request.config.getoption("benchmark_disable", False) else ROUNDS):
            t = time.perf_counter()
            query(bird.socket_path, "show route", timeout=60)
            alone.append(time.perf_counter() - t)
        STATUS_LIVE.setdefault(GROUP, {})["bird-alone"] = {"seconds": min(alone)}
        yield bird.socket_path, bird6.socket_path
    finally:
        registry.cleanup()


def _resource() -> CalicoNodeStatus:
    return CalicoNodeStatus(
        api_version="projectcalico.org/v3", kind="CalicoNodeStatus",
        metadata=ObjectMeta(name="bench-status"),
        spec=CalicoNodeStatusSpec(node="node-0", classes=list(CLASSES),
                                  update_period_seconds=10))


def ours(sock4: str, sock6: str):
    v4, v6 = collect_live(CLASSES, sock4, sock6, idle_timeout=60)
    return build_status(_resource(), v4, v6)


def theirs(sock4: str, sock6: str):
    return calico_way.calico_status(_resource(), sock4, sock6)


def _run(benchmark, impl: str, fn, sockets) -> None:
    samples = []

    def once():
        c, t = time.process_time(), time.perf_counter()
        res = fn(*sockets)
        samples.append((time.perf_counter() - t, time.process_time() - c))
        return res

    res = benchmark.pedantic(once, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    assert len(res.status.routes.routes_v4) >= N_ROUTES
    best = min(w for w, _ in samples)
    cpu = min(c for _, c in samples)   # our process only; BIRD runs on the other core
    _BUILT[impl] = res
    STATUS_LIVE.setdefault(GROUP, {})[impl] = {"seconds": best, "cpu": cpu,
                                               "runs": len(samples), "routes": N_ROUTES}
    benchmark.extra_info.update(seconds=best, cpu_s=cpu, runs=len(samples), routes=N_ROUTES)
    other = STATUS_LIVE[GROUP].get("nodestatus" if impl != "nodestatus" else calico_way.label)
    if other:
        ours_s = best if impl == "nodestatus" else other["seconds"]
        calico_s = best if impl != "nodestatus" else other["seconds"]
        benchmark.extra_info.update(ours_s=ours_s, calico_way_s=calico_s,
                                    ratio=calico_s / ours_s)


@pytest.mark.benchmark(group=GROUP)
def bench_status_nodestatus(benchmark, live_node):
    _run(benchmark, "nodestatus", ours, live_node)


@pytest.mark.benchmark(group=GROUP)
def bench_status_calico_way(benchmark, live_node):
    _run(benchmark, calico_way.label, theirs, live_node)


def _routes(st):
    return sorted((r.destination, r.gateway, r.interface, r.type, r.learned_from.source_type,
                   r.learned_from.peer_ip) for r in st.routes_v4 + st.routes_v6)


def _peers(bgp):
    return (sorted((p.peer_ip, p.type, p.state) for p in bgp.peers_v4),
            sorted((p.peer_ip, p.type, p.state) for p in bgp.peers_v6),
            bgp.number_established_v4, bgp.number_not_established_v4,
            bgp.number_established_v6, bgp.number_not_established_v6)


def _same_times(a, b):
    """BIRD 1.6 prints one instant a second apart from one query to the next (its
    monotonic clock plus the real-time offset, both in whole seconds): the two builds
    queried BIRD at different moments, so their times agree within that jitter."""
    return len(a) == len(b) and all(same_instant(x, y) for x, y in zip(a, b))


def test_same_status(live_node):
    """Both implementations report the same peers and routes (built by the benches above
    when they ran, else here)."""
    a = _BUILT.get("nodestatus") or ours(*live_node)
    b = _BUILT.get(calico_way.label) or theirs(*live_node)
    sa, sb = a.status, b.status
    assert _peers(sa.bgp) == _peers(sb.bgp)
    for fam in ("peers_v4", "peers_v6"):
        pa, pb = (sorted(getattr(x, fam), key=lambda p: p.peer_ip) for x in (sa.bgp, sb.bgp))
        assert _same_times([p.since for p in pa], [p.since for p in pb])
    assert sorted((p.peer_ip, p.type, p.state) for p in sa.bgp.peers_v4) == sorted(
        (ip, "NodeMesh" if name.startswith("Mesh") else "GlobalPeer", "Established")
        for name, ip, _ in PEERS)
    assert sa.bgp.number_established_v4 == len(PEERS)
    ra, rb = _routes(sa.routes), _routes(sb.routes)
    assert len(ra) == N_ROUTES + 1 + len(BLOCKS) * len(PEERS) + len(sa.routes.routes_v6)
    assert ra == rb
    assert {r[4] for r in ra} == {"Static", "Direct", "NodeMesh", "BGPPeer"}
    for fam in ("bird_v4", "bird_v6"):
        da, db = getattr(sa.agent, fam), getattr(sb.agent, fam)
        assert (da.state, da.router_id) == (db.state, db.router_id)
        assert _same_times((da.last_boot_time, da.last_reconfiguration_time),
                           (db.last_boot_time, db.last_reconfiguration_time))
        assert da.state == "Ready"
        # Calico only keeps a version that starts with "v" (Calico's own BIRD build)
        assert (da.version, db.version) == ("1.6.8", "")
