"""Metrics (``nodestatus.metrics``) from real BIRD replies (the Calico lab node's captures,
BIRD 1.6.8 and 2.0.12), read back with prometheus-client's own parser: values, labels,
staleness, the agent's counters, /metrics over HTTP, and the bound on series."""
from __future__ import annotations

import copy
import http.client
import threading
import time
from pathlib import Path
from typing import Dict, Tuple

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from nodestatus.agent import Agent  # noqa: E402
from nodestatus.errors import BirdTimeoutError  # noqa: E402
from nodestatus.fibcheck import FibDiff, FibFamilyReport  # noqa: E402
from nodestatus.listener import Listener  # noqa: E402
from nodestatus.metrics import (AgentMetrics, CollectionLoop, Metrics,  # noqa: E402
                                SESSION_STATES)
from nodestatus.sources import collect_dumps  # noqa: E402
from nodestatus.status import FamilyData  # noqa: E402
from nodestatus.structs import BgpSession, Protocol, RouteCounters  # noqa: E402

from test_agent import Clock, FakeBird, MemSink  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "captures"
LAB = DATA / "calico-lab-node1"
BIRD2 = DATA / "2.0.12"
#: the lab node's `Current server time` (show_status.raw) as the collection's wall time
LAB_NOW = 1_800_000_000.0


def _lab(fam: int):
    return [str(LAB / f"v{fam}" / n) for n in ("show_status.raw", "show_protocols_all.raw",
                                               "show_route.raw")]


Series = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def scrape(metrics: Metrics) -> Series:
    """Every sample of ``metrics.render()`` as parsed by prometheus-client's parser."""
    out: Series = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def value(series: Series, name: str, **labels: str) -> float:
    return series[(name, tuple(sorted(labels.items())))]


def names(series: Series, name: str) -> list:
    return [dict(k[1]) for k in series if k[0] == name]


class Wall:
    def __init__(self, t: float = LAB_NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def lab_metrics():
    clock, wall = Clock(), Wall()
    m = Metrics(30.0, clock=clock, wall=wall, process=False)
    v4, v6 = collect_dumps(_lab(4), _lab(6))
    m.collected(v4, v6, 0.2)
    return m, clock, wall


def test_bird_and_bgp_from_the_lab_node(lab_metrics):
    m, _, _ = lab_metrics
    s = scrape(m)
    for fam in ("4", "6"):
        assert value(s, "nodestatus_bird_up", ip_version=fam) == 1
        assert value(s, "nodestatus_bird_info", ip_version=fam, version="1.6.8",
                     router_id="10.77.0.1") == 1
        # show_status.raw: "Current server time is 2026-11-27 06:26:23", reboot 06:22:11
        assert value(s, "nodestatus_bird_last_reboot_timestamp_seconds", ip_version=fam) \
            == LAB_NOW - 252
        assert value(s, "nodestatus_bird_last_reconfiguration_timestamp_seconds",
                     ip_version=fam) == LAB_NOW - 252
        assert value(s, "nodestatus_bgp_peers_established", ip_version=fam) == 2
        assert value(s, "nodestatus_bgp_peers_not_established", ip_version=fam) == 2
    mesh = dict(ip_version="4", protocol="Mesh_10_77_0_2", peer_ip="10.77.0.2",
                peer_type="NodeMesh")
    states = {st: value(s, "nodestatus_bgp_session_state", state=st, **mesh)
              for st in SESSION_STATES}
    assert states == {st: float(st == "Established") for st in SESSION_STATES}
    assert value(s, "nodestatus_bgp_session_state_age_seconds", **mesh) == 250  # since 06:22:13
    glob = dict(ip_version="6", protocol="Global_fd77__250", peer_ip="fd77::250",
                peer_type="GlobalPeer")
    assert value(s, "nodestatus_bgp_session_state", state="Connect", **glob) == 1
    assert value(s, "nodestatus_bgp_session_state", state="Established", **glob) == 0


def test_routes_per_protocol_and_per_type(lab_metrics):
    m, _, _ = lab_metrics
    s = scrape(m)
    kernel = dict(ip_version="4", protocol="kernel1", proto="Kernel")
    assert value(s, "nodestatus_protocol_up", **kernel) == 1
    assert {k: value(s, "nodestatus_protocol_routes", kind=k, **kernel)
            for k in ("imported", "exported", "preferred")} == \
        {"imported": 3, "exported": 3, "preferred": 3}
    # BIRD printed no `filtered` count (no `import keep filtered`): no series, not a 0
    assert not [lb for lb in names(s, "nodestatus_protocol_routes") if lb["kind"] == "filtered"]
    assert value(s, "nodestatus_protocol_up", ip_version="4", protocol="Global_10_77_0_250",
                 proto="BGP") == 0
    # show_route.raw: the two other nodes' blocks by mesh, 3 kernel routes, the own block,
    # the eth0 subnet
    per_type = {(lb["type"], lb["source_type"]): value(s, "nodestatus_routes", **lb)
                for lb in names(s, "nodestatus_routes") if lb["ip_version"] == "4"}
    assert per_type == {("FIB", "NodeMesh"): 2, ("FIB", "Kernel"): 3, ("FIB", "Static"): 1,
                        ("FIB", "Direct"): 1}
    assert value(s, "nodestatus_routes_sync_failed", ip_version="4") == 0


def test_bang_routes_are_counted(tmp_path):
    raw = (LAB / "v4" / "show_route.raw").read_bytes()
    line = b" 192.168.2.0/26     via 10.77.0.2 on eth0 [Mesh_10_77_0_2 06:22:13] * (100/0) [i]"
    bang = tmp_path / "show_route.raw"
    bang.write_bytes(raw.replace(line, line.replace(b"] * (", b"] ! (")))
    v4, v6 = collect_dumps(_lab(4)[:2] + [str(bang)])
    m = Metrics(30.0, process=False)
    m.collected(v4, v6, 0.1)
    s = scrape(m)
    assert value(s, "nodestatus_routes_sync_failed", ip_version="4") == 1
    assert value(s, "nodestatus_routes", ip_version="4", type="RIB", source_type="NodeMesh") == 1
    assert value(s, "nodestatus_bird_up", ip_version="6") == 0      # no IPv6 capture given


def test_bird2_counts_per_channel():
    files = [str(BIRD2 / f) for f in ("show_status.raw.txt", "show_protocols_all.raw.txt",
                                      "show_route.raw.txt")]
    v4, v6 = collect_dumps(files)
    m = Metrics(30.0, process=False)
    m.collected(v4, v6, 0.1)
    s = scrape(m)
    direct = {fam: value(s, "nodestatus_protocol_routes", ip_version=fam, protocol="direct1",
                         proto="Direct", kind="imported") for fam in ("4", "6")}
    assert direct == {"4": 3, "6": 2}                 # the ipv4 and ipv6 channels
    protocols = {(lb["ip_version"], lb["protocol"]) for lb in names(s, "nodestatus_protocol_up")}
    assert ("4", "kernel4") in protocols and ("6", "kernel4") not in protocols
    assert ("6", "kernel6") in protocols and ("4", "kernel6") not in protocols
    assert {("4", "device1"), ("6", "device1")} <= protocols       # no channel: both
    assert value(s, "nodestatus_bird_info", ip_version="6", version="2.0.12",
                 router_id="192.0.2.2") == 1


def test_a_stuck_bird_never_holds_a_scrape(lab_metrics):
    """The collection thread is stuck in BIRD; scrapes answer at once with the last sample
    and a growing age."""
    m, clock, wall = lab_metrics
    release = threading.Event()
    calls = []

    def stuck():
        calls.append(1)
        release.wait(30)
        raise BirdTimeoutError("no answer within 5 s", socket="bird.ctl")

    clock.t += 31                                        # the sample is due again
    loop = CollectionLoop(m, stuck).start()
    try:
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls, "the loop did not ask BIRD"
        t0 = time.perf_counter()
        s = scrape(m)
        assert time.perf_counter() - t0 < 0.5
        assert value(s, "nodestatus_collection_age_seconds") == 31
        assert value(s, "nodestatus_bird_up", ip_version="4") == 1       # the last sample
        clock.t += 60
        wall.t += 60
        s = scrape(m)
        assert value(s, "nodestatus_collection_age_seconds") == 91
        mesh = dict(ip_version="4", protocol="Mesh_10_77_0_2", peer_ip="10.77.0.2",
                    peer_type="NodeMesh")
        assert value(s, "nodestatus_bgp_session_state_age_seconds", **mesh) == 310
    finally:
        release.set()
        loop.stop(timeout=5)
    s = scrape(m)
    assert value(s, "nodestatus_collection_errors_total", error="BirdTimeoutError") == 1
    assert value(s, "nodestatus_collection_duration_seconds_count") == 2


def test_no_sample_yet_only_the_age():
    clock = Clock()
    m = Metrics(15.0, clock=clock, process=False)
    clock.t += 7
    s = scrape(m)
    assert value(s, "nodestatus_collection_age_seconds") == 7
    assert value(s, "nodestatus_collection_period_seconds") == 15
    assert not names(s, "nodestatus_bird_up")


def test_fib_drift_series():
    m = Metrics(30.0, wall=Wall(), process=False)
    diffs = [FibDiff(prefix=p, kind=k) for p, k in (("192.168.2.0/26", "missing"),
                                                    ("192.168.3.0/26", "missing"),
                                                    ("192.168.1.5/32", "shadowed"))]
    m.fib_checked(FibFamilyReport(family=4, table=254, missing=2, shadowed=1, seconds=0.25,
                                  differences=diffs))
    m.fib_checked(FibFamilyReport(family=6, table=254))
    s = scrape(m)
    assert {k: value(s, "nodestatus_fib_drift_routes", ip_version="4", kind=k)
            for k in ("missing", "extra", "mismatched", "shadowed")} == \
        {"missing": 2, "extra": 0, "mismatched": 0, "shadowed": 1}
    assert value(s, "nodestatus_fib_in_sync", ip_version="4") == 0
    assert value(s, "nodestatus_fib_in_sync", ip_version="6") == 1
    assert value(s, "nodestatus_fib_check_duration_seconds", ip_version="4") == 0.25
    assert value(s, "nodestatus_fib_check_timestamp_seconds", ip_version="6") == LAB_NOW


def test_agent_counters_from_its_rounds():
    sink, bird, clock = MemSink(), FakeBird(), Clock()
    m = Metrics(30.0, clock=clock, wall=Wall(), process=False)
    events = AgentMetrics(m)
    agent = Agent(sink, "node1", bird, clock=clock, events=events)
    events.serve(agent)
    sink.put("a", period=10)
    sink.put("b", classes=("BGP",), period=10)
    agent.resync()
    assert agent.report_round() == 2
    s = scrape(m)
    assert value(s, "nodestatus_agent_reports_total", result="written") == 2
    assert value(s, "nodestatus_agent_reports_total", result="failed") == 0
    assert value(s, "nodestatus_agent_bird_query_duration_seconds_count") == 1
    assert value(s, "nodestatus_agent_report_duration_seconds_count") == 1
    assert value(s, "nodestatus_agent_last_report_timestamp_seconds") == LAB_NOW
    assert value(s, "nodestatus_agent_resources") == 2
    # the round asked for every class: it is the sample scrapes show, no second query
    assert value(s, "nodestatus_bird_up", ip_version="4") == 1
    assert value(s, "nodestatus_collection_age_seconds") == 0
    clock.t += 10
    assert agent.report_round() == 0                 # nothing changed in BIRD
    sink.put("a", status={"foreign": True})          # another writer changed it...
    for ev in sink.events:
        agent.on_event(ev)
    sink.events.clear()
    sink.conflict_next = True                        # ...and does again as we write
    clock.t += 10
    assert agent.report_round() == 1                 # written on the second attempt
    bird.fail = BirdTimeoutError("no answer", socket="bird.ctl")
    clock.t += 10
    agent.report_round()
    sink.down = True
    with pytest.raises(Exception):
        agent.resync()
    s = scrape(m)
    assert value(s, "nodestatus_agent_reports_total", result="unchanged") >= 2
    assert value(s, "nodestatus_agent_conflicts_retried_total") == 1
    assert value(s, "nodestatus_agent_datastore_errors_total", operation="write",
                 kind="conflict") == 1
    assert value(s, "nodestatus_agent_report_failures_total", reason="bird") == 2
    assert value(s, "nodestatus_agent_reports_total", result="failed") == 2
    assert value(s, "nodestatus_agent_datastore_errors_total", operation="list",
                 kind="error") == 1


def test_metrics_over_http(lab_metrics):
    m, _, _ = lab_metrics
    lst = Listener("127.0.0.1", 0).route("/metrics", m.endpoint()).start()
    try:
        conn = http.client.HTTPConnection(*lst.address, timeout=5)
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read().decode()
        conn.close()
    finally:
        lst.close()
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/plain; version=")
    assert {f.name for f in text_string_to_metric_families(body)} >= {
        "nodestatus_bird_up", "nodestatus_bgp_session_state", "nodestatus_routes"}


def _peers_node(peers: int, routes: int) -> FamilyData:
    """A node with ``peers`` mesh sessions and ``routes`` routes (from the lab's, repeated)."""
    v4, _ = collect_dumps(_lab(4))
    v4 = copy.deepcopy(v4)
    protos = [p for p in v4.protocols if p.proto != "BGP"]
    for i in range(peers):
        ip = f"10.78.{i // 250}.{i % 250 + 1}"
        protos.append(Protocol(name="Mesh_" + ip.replace(".", "_"), proto="BGP", state="up",
                               since="06:22:13", info="Established", bgp_state="Established",
                               detail=True, routes=RouteCounters(imported=1, exported=1,
                                                                 preferred=1),
                               bgp=BgpSession(state="Established", neighbor_address=ip)))
    v4.protocols = protos
    v4.routes = (v4.routes * (routes // len(v4.routes) + 1))[:routes]
    return v4


def test_series_are_bounded_by_peers_not_routes():
    """The README's cardinality: per BGP peer 7 state series + 1 age + 1 up + 3 route
    counters; nothing per route."""
    counts = {}
    for peers, routes in ((100, 10), (100, 100_000), (10, 100_000)):
        m = Metrics(30.0, process=False)
        m.collected(_peers_node(peers, routes), FamilyData(family=6), 0.1)
        counts[(peers, routes)] = len(scrape(m))
    assert counts[(100, 10)] == counts[(100, 100_000)]
    assert counts[(100, 10)] - counts[(10, 100_000)] == 90 * 12
    assert counts[(100, 10)] < 1400


# --------------------------------------------------------------------------- the command


def test_exporter_command_serves_and_stops_on_sigterm(tmp_path):
    """No BIRD at the given paths: both families are down (not an error), the exporter
    serves that, and SIGTERM stops it with exit 0."""
    import signal
    import subprocess
    import sys

    from fakes.kubelet import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nodestatus", "exporter", "--listen", f"127.0.0.1:{port}",
         "--socket4", str(tmp_path / "bird.ctl"), "--socket6", str(tmp_path / "bird6.ctl"),
         "--period", "1", "--log-format", "text"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        families = {}
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/metrics")
                text = conn.getresponse().read().decode()
                conn.close()
            except OSError:
                time.sleep(0.1)
                continue
            families = {f.name: f for f in text_string_to_metric_families(text)}
            if "nodestatus_bird_up" in families:
                break
            time.sleep(0.1)
        ups = {s.labels["ip_version"]: s.value for s in families["nodestatus_bird_up"].samples}
        assert ups == {"4": 0.0, "6": 0.0}
        assert "process_resident_memory_bytes" in families
        assert not any(n.endswith("_created") for n in families)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "exporter starting" in err and "exporter stopped" in err


@pytest.mark.parametrize("argv, names", [
    (["exporter", "--listen", "9324"], "--listen"),
    (["exporter", "--listen", ":0", "--period", "0"], "--period"),
    (["exporter", "--listen", ":0", "--fib-check-period", "-1"], "--fib-check-period"),
    (["agent", "--node", "n", "--metrics-addr", "localhost"], "--metrics-addr"),
    (["agent", "--node", "n", "--metrics-period", "nan"], "--metrics-period"),
])
def test_bad_metric_options(argv, names, capsys):
    from nodestatus import cli

    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and names in err and "Traceback" not in err


def test_exporter_address_in_use(capsys):
    import socket

    from nodestatus import cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["exporter", "--listen", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err == f"nodestatus exporter: --listen: cannot listen on 127.0.0.1:{port}: " \
                  "Address already in use\n"
