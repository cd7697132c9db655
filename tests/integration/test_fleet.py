"""The fleet: the real 3-node BIRD 1.6.8 lab, the datastore inside the lab (a real etcd, or
the fake API server in Calico's CRD shape with the lab's Nodes), and one ``nodestatus agent
--metrics-addr`` per node, each in its node's namespace (fixtures/fleet.py). Every test runs
once per datastore.

``cluster request --all-nodes`` makes the three resources from the nodes the datastore knows
(Calico's Node resources in etcd, Kubernetes Nodes); the agents fill them. Then:
``/metrics``, scraped over HTTP from the node network and read with prometheus-client's
parser, says what BIRD says (checked against BIRD's raw answers, not our parser); a disabled
session shows in the state series within one collection period; a kernel route replaced
behind BIRD's back is counted shadowed; a scrape while BIRD is SIGSTOPped answers at once
with a growing staleness; ``nodestatus cluster`` shows the three nodes and, once a session is
half open (one side disabled it, the other was never told), the asymmetric session naming
both; ``cluster request`` is idempotent and ``--delete`` removes only its own.
"""
from __future__ import annotations

import copy
import json
import re
import signal
import time
from typing import Callable, Optional

import pytest

from .fixtures.calico_cluster import Cluster, calico_cluster_16  # noqa: F401  (fixture)
from .fixtures.etcd import EtcdServer, require_etcd
from .fixtures.fleet import (Fleet, add_datastore_address, half_open_session, labels_of,
                             value)
from .fixtures.netns import run_in_netns
from .test_agent_etcd import _cli_env, restore_cluster, wait_for

pytest.importorskip("prometheus_client")
pytestmark = [pytest.mark.integration, pytest.mark.etcd, pytest.mark.bird, pytest.mark.netns]

NODES_PREFIX = "/calico/resources/v3/projectcalico.org/nodes/"
STATUS_PREFIX = "/calico/resources/v3/projectcalico.org/caliconodestatuses/"
#: The agents' metrics collection period, and the resources' updatePeriodSeconds.
PERIOD = 2.0
RESOURCE_PERIOD = 3
FIB_PERIOD = 2.0
#: What "within one period" allows on top: the collection itself and the scrape.
SLACK = 1.5


def calico_node(node) -> dict:
    """A Calico Node resource as calico-node writes it in etcd mode."""
    return {"kind": "Node", "apiVersion": "projectcalico.org/v3",
            "metadata": {"name": node.name, "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"bgp": {"ipv4Address": f"{node.ipv4}/24", "ipv6Address": f"{node.ipv6}/64"}},
            "status": {}}


class Store:
    """The datastore as the tests see it, read and written without the code under test:
    ``doc(name)`` the whole resource (None if absent), ``put(doc)`` another client's
    resource, ``drop(name)``."""

    def __init__(self, doc: Callable[[str], Optional[dict]], put: Callable[[dict], None],
                 drop: Callable[[str], None]) -> None:
        self.doc, self.put, self.drop = doc, put, drop

    def status(self, name: str) -> Optional[dict]:
        return (self.doc(name) or {}).get("status")


def _etcd_datastore(cluster: Cluster, address: str, tmp_path_factory, require):
    require_etcd(require)
    server = EtcdServer(tmp_path_factory.mktemp("fleet-etcd"), host=address,
                        netns=cluster.bridge).start()
    for node in cluster:
        server.put(NODES_PREFIX + node.name, calico_node(node))
    store = Store(lambda name: server.read_json(STATUS_PREFIX + name),
                  lambda doc: server.put(STATUS_PREFIX + doc["metadata"]["name"], doc),
                  lambda name: server.delete(STATUS_PREFIX + name))
    return ["--datastore", "etcdv3", "--etcd-endpoints", server.url], store, server.stop


def _kube_datastore(cluster: Cluster, address: str, tmp_path_factory, require):
    pytest.importorskip("kubernetes")
    from fakes.kube_api import FakeKubeAPI

    api = FakeKubeAPI(host=address)              # Calico's CRD: no status subresource
    run_in_netns(cluster.bridge, api.start)      # listens inside the lab
    for node in cluster:
        api.add_node(node.name, ipv4=f"{node.ipv4}/24", ipv6=f"{node.ipv6}/64",
                     internal_ips=(node.ipv4, node.ipv6))
    kubeconfig = api.kubeconfig(tmp_path_factory.mktemp("fleet-kube") / "kubeconfig")

    def put(doc: dict) -> None:
        api.create(doc["metadata"]["name"], doc["spec"])

    store = Store(lambda name: copy.deepcopy(api.objects.get(name)), put, api.delete)
    store.api = api                              # type: ignore[attr-defined]
    return ["--datastore", "kubernetes", "--kubeconfig", kubeconfig], store, api.stop


@pytest.fixture(scope="module", params=["etcdv3", "kubernetes"])
def fleet(request, calico_cluster_16: Cluster, require, tmp_path_factory):
    cluster = calico_cluster_16
    address = add_datastore_address(cluster)
    make = _etcd_datastore if request.param == "etcdv3" else _kube_datastore
    options, store, stop = make(cluster, address, tmp_path_factory, require)
    try:
        fl = Fleet(cluster, options, _cli_env(), tmp_path_factory.mktemp("fleet-logs"))
        fl.store = store                                 # type: ignore[attr-defined]
        fl.kind = request.param                          # type: ignore[attr-defined]
        made = fl.nodestatus("cluster", "request", "--all-nodes", "--period",
                             str(RESOURCE_PERIOD), *fl.datastore)
        assert made.returncode == 0, made.stderr
        assert made.stdout.splitlines() == [
            f"created nodestatus-{n.name} (node {n.name})" for n in cluster]
        fl.start_agents("--metrics-period", str(PERIOD), "--fib-check-period",
                        str(FIB_PERIOD))
        try:
            for node in cluster:
                wait_for(lambda n=node: store.status(f"nodestatus-{n.name}"), 30,
                         f"{node.name}'s status written:\n{fl.log(node.name)}")
            yield fl
        finally:
            codes = fl.stop_agents()
            assert set(codes.values()) == {0}, {n: fl.log(n)[-2000:] for n in codes}
    finally:
        stop()


@pytest.fixture
def lab(fleet: Fleet) -> Fleet:
    if fleet.cluster.not_established():        # a previous test left something behind
        restore_cluster(fleet.cluster)
    return fleet


def raw_routes_line(raw: bytes, protocol: str) -> dict:
    """`Routes: 3 imported, 3 exported, 3 preferred` of one protocol in a raw `show
    protocols all` reply, read without the parser under test."""
    block = raw.decode().split(f"{protocol} ", 1)[1].split("\n1002-", 1)[0]
    m = re.search(r"Routes:\s+(\d+) imported, (?:(\d+) filtered, )?(\d+) exported, "
                  r"(\d+) preferred", block)
    assert m, block
    return {"imported": int(m.group(1)), "exported": int(m.group(3)),
            "preferred": int(m.group(4))}


def raw_route_total(raw: bytes) -> int:
    m = re.search(rb"(\d+) of \d+ routes for \d+ networks", raw)
    assert m, raw
    return int(m.group(1))


# -- metrics ------------------------------------------------------------------------------------
def _fib_checked(lab: Fleet, node) -> bool:
    samples = lab.scrape(node)[0]
    return all(value(samples, "nodestatus_fib_check_timestamp_seconds", ip_version=f)
               for f in ("4", "6"))


def test_metrics_say_what_bird_says(lab: Fleet):
    for node in lab.cluster:     # the first FIB check runs beside the first report: wait for it
        wait_for(lambda n=node: _fib_checked(lab, n), 30,
                 f"{node.name}: no FIB check in /metrics:\n{lab.log(node.name)[-2000:]}")
    for node in lab.cluster:
        samples, took = lab.scrape(node)
        assert samples, lab.log(node.name)[-2000:]
        print(f"{node.name}: scrape {took * 1000:.1f} ms, {len(samples)} samples")
        for fam in (4, 6):
            f = str(fam)
            status = node.query("show status", fam).decode()
            version = re.search(r"1000-BIRD (\S+)", status).group(1)
            assert value(samples, "nodestatus_bird_up", ip_version=f) == 1
            assert value(samples, "nodestatus_bird_info", ip_version=f, version=version,
                         router_id=node.ipv4) == 1
            table = node.protocol_table(fam)
            bgp = {name: info for name, (proto, _state, info) in table.items()
                   if proto == "BGP"}
            assert bgp
            up = 0
            for name, info in bgp.items():
                got = {lb["state"] for lb in labels_of(samples, "nodestatus_bgp_session_state")
                       if lb["protocol"] == name and lb["ip_version"] == f
                       and value(samples, "nodestatus_bgp_session_state", **lb) == 1}
                if info.startswith("Established"):
                    assert got == {"Established"}, (name, info)
                else:   # the unanswered peers go round Connect/Active between two reads
                    assert len(got) == 1 and got <= {"Idle", "Connect", "Active"}, (name, info)
                up += table[name][1] == "up"
            assert value(samples, "nodestatus_bgp_peers_established", ip_version=f) == up
            assert value(samples, "nodestatus_bgp_peers_not_established",
                         ip_version=f) == len(bgp) - up
            kernel = raw_routes_line(node.query("show protocols all kernel1", fam), "kernel1")
            for kind, n in kernel.items():
                assert value(samples, "nodestatus_protocol_routes", ip_version=f,
                             protocol="kernel1", proto="Kernel", kind=kind) == n
            total = raw_route_total(node.query("show route count", fam))
            per_type = sum(value(samples, "nodestatus_routes", **lb)
                           for lb in labels_of(samples, "nodestatus_routes")
                           if lb["ip_version"] == f)
            assert per_type == total
            assert value(samples, "nodestatus_routes", ip_version=f, type="FIB",
                         source_type="NodeMesh") == 2      # the two other nodes' blocks
            assert value(samples, "nodestatus_routes_sync_failed", ip_version=f) == 0
            assert value(samples, "nodestatus_fib_in_sync", ip_version=f) == 1
        # the node with the non-Calico session counts it (a BIRD exporter, not only Calico)
        if node.extra_address:
            name = node.peers[4]["extra"][0]
            assert value(samples, "nodestatus_bgp_session_state", ip_version="4",
                         protocol=name, peer_ip=lab.cluster.node(3 - node.index).extra_address,
                         peer_type="other", state="Established") == 1
        assert value(samples, "nodestatus_collection_age_seconds") < 3 * PERIOD
        assert value(samples, "nodestatus_agent_reports_total", result="written") >= 1
        assert value(samples, "nodestatus_agent_resources") == 1
        code, body, _ = lab.get(node, "/readyz")
        assert code == 200 and json.loads(body)["ok"] is True


def test_a_broken_session_shows_within_one_period(lab: Fleet):
    node1, node2 = lab.cluster.node(1), lab.cluster.node(2)
    proto = "Mesh_10_77_0_2"
    labels = dict(ip_version="4", protocol=proto, peer_ip=node2.ipv4, peer_type="NodeMesh")

    def state(samples):
        return {lb["state"] for lb in labels_of(samples, "nodestatus_bgp_session_state")
                if lb["protocol"] == proto and value(samples, "nodestatus_bgp_session_state",
                                                     **lb) == 1}

    assert state(lab.scrape(node1)[0]) == {"Established"}
    try:
        t0 = time.monotonic()
        lab.cluster.disable_protocol(node1, proto)
        seen = wait_for(lambda: (st := state(lab.scrape(node1)[0])) != {"Established"} and st,
                        10, "the state series changed", interval=0.05)
        took = time.monotonic() - t0
        print(f"disabled session seen in /metrics after {took:.2f}s (period {PERIOD}s)")
        assert seen == {"Idle"}
        assert took <= PERIOD + SLACK
        samples = lab.scrape(node1)[0]
        assert value(samples, "nodestatus_bgp_session_state", state="Established",
                     **labels) == 0
        assert value(samples, "nodestatus_bgp_session_state_age_seconds", **labels) < 10
        assert value(samples, "nodestatus_protocol_up", ip_version="4", protocol=proto,
                     proto="BGP") == 0
    finally:
        lab.cluster.enable_protocol(node1, proto)
        lab.cluster.wait_established(60)
    wait_for(lambda: state(lab.scrape(node1)[0]) == {"Established"}, 3 * PERIOD,
             "Established again")


def test_a_route_replaced_behind_birds_back_is_shadowed(lab: Fleet):
    """Someone points node2's block elsewhere (node3) with a better metric: the kernel
    forwards differently from what BIRD installed."""
    node1, node2, node3 = lab.cluster.node(1), lab.cluster.node(2), lab.cluster.node(3)
    block = node2.blocks[4]

    def shadowed():
        return value(lab.scrape(node1)[0], "nodestatus_fib_drift_routes", ip_version="4",
                     kind="shadowed")

    assert shadowed() == 0
    lab.registry.ip(node1.namespace, "route", "replace", block, "via", node3.ipv4, "dev",
                    "eth0", "proto", "static", "metric", "100")
    try:
        t0 = time.monotonic()
        wait_for(lambda: shadowed() == 1, 3 * FIB_PERIOD + 5, "shadowed counted",
                 interval=0.2)
        print(f"shadowed route counted after {time.monotonic() - t0:.2f}s "
              f"(FIB check every {FIB_PERIOD}s)")
        samples = lab.scrape(node1)[0]
        assert value(samples, "nodestatus_fib_in_sync", ip_version="4") == 0
        assert value(samples, "nodestatus_fib_drift_routes", ip_version="4",
                     kind="missing") == 0
        assert value(samples, "nodestatus_fib_check_timestamp_seconds", ip_version="4") \
            > time.time() - 3 * FIB_PERIOD - 5
    finally:
        lab.registry.ip(node1.namespace, "route", "del", block, "proto", "static",
                        "metric", "100")
    wait_for(lambda: shadowed() == 0, 3 * FIB_PERIOD + 5, "in sync again")


def test_a_scrape_while_bird_is_stopped_answers_at_once(lab: Fleet):
    node3 = lab.cluster.node(3)
    bird = lab.cluster.daemon(node3, 4).proc
    ages, took = [], []
    bird.send_signal(signal.SIGSTOP)
    try:
        end = time.monotonic() + 3 * PERIOD + 2
        while time.monotonic() < end:
            samples, seconds = lab.scrape(node3, timeout=5)
            took.append(seconds)
            ages.append(value(samples, "nodestatus_collection_age_seconds"))
            time.sleep(0.5)
    finally:
        bird.send_signal(signal.SIGCONT)
    print(f"scrapes while BIRD was stopped: max {max(took) * 1000:.1f} ms; ages {ages}")
    assert None not in ages
    assert max(took) < 1.0
    assert ages[-1] > ages[0] + PERIOD and ages[-1] > 2 * PERIOD   # growing, never reset
    wait_for(lambda: value(lab.scrape(node3)[0], "nodestatus_collection_age_seconds")
             < 2 * PERIOD, 30, "collections again after SIGCONT")


# -- the cluster view ------------------------------------------------------------------------------
def test_cluster_view_and_an_asymmetric_session(lab: Fleet):
    # converged: a reporter a previous test held up (BIRD stopped) has written again
    view = wait_for(lambda: (v := lab.cluster_view("-o", "json")).returncode == 0 and v,
                    4 * RESOURCE_PERIOD, "a view with no problem")
    doc = json.loads(view.stdout)
    assert [(r["node"], r["birdV4"], r["birdV6"], r["establishedV4"], r["configuredV4"],
             r["establishedV6"], r["configuredV6"]) for r in doc["nodes"]] == [
        (n.name, "Ready", "Ready", 2, 4, 2, 4) for n in lab.cluster]
    assert doc["problems"] == []
    wide = lab.cluster_view()
    print(wide.stdout)
    assert wide.returncode == 0 and "No problems found." in wide.stdout

    store = lab.store                                     # type: ignore[attr-defined]
    node1, node2 = lab.cluster.node(1), lab.cluster.node(2)

    def peer_state(node, peer) -> str:
        st = store.status(f"nodestatus-{node.name}")
        for p in ((st or {}).get("bgp") or {}).get("peersV4") or []:
            if p["peerIP"] == peer.ipv4:
                return p["state"]
        return ""

    with half_open_session(lab.cluster, node1, node2) as (proto1, proto2):
        wait_for(lambda: peer_state(node1, node2) not in ("", "Established"),
                 3 * RESOURCE_PERIOD + 5, "node1's status shows the session down")
        # node2 was never told: its BIRD, and so its status, still say Established
        assert node2.protocol_table(4)[proto2][2].startswith("Established")
        assert peer_state(node2, node1) == "Established"
        view = lab.cluster_view("-o", "json")
        wide = lab.cluster_view()
    print(wide.stdout)
    assert view.returncode == 1, view.stderr
    problems = json.loads(view.stdout)["problems"]
    assert [(p["kind"], p["nodes"], p.get("family")) for p in problems] == [
        ("asymmetric-session", ["node2", "node1"], 4)]
    assert problems[0]["detail"].startswith(
        "node2 reports its IPv4 session to node1 (10.77.0.1) Established, but node1 reports "
        "node2 (10.77.0.2) ")
    assert wide.returncode == 1 and "asymmetric-session" in wide.stdout


def test_cluster_request_is_idempotent_and_delete_removes_only_its_own(lab: Fleet):
    store = lab.store                                     # type: ignore[attr-defined]
    before = {n.name: store.doc(f"nodestatus-{n.name}") for n in lab.cluster}
    assert all(d["metadata"]["labels"] == {"app.kubernetes.io/managed-by":
                                           "nodestatus-cluster-request"}
               for d in before.values())                  # the agents kept the label
    again = lab.nodestatus("cluster", "request", "--all-nodes", "--period",
                           str(RESOURCE_PERIOD), *lab.datastore)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"unchanged nodestatus-{n.name} (node {n.name})" for n in lab.cluster]
    hand_made = {"kind": "CalicoNodeStatus", "apiVersion": "projectcalico.org/v3",
                 "metadata": {"name": "nodestatus-node9"},
                 "spec": {"node": "node9", "classes": ["BGP"], "updatePeriodSeconds": 0}}
    store.put(hand_made)
    try:
        gone = lab.nodestatus("cluster", "request", "--delete", "--prefix", "nodestatus-node1",
                              *lab.datastore)
        assert gone.returncode == 0, gone.stderr
        assert gone.stdout.splitlines() == ["deleted nodestatus-node1 (node node1)"]
        assert store.doc("nodestatus-node1") is None
        assert store.doc("nodestatus-node9")["spec"] == hand_made["spec"]
        # node9 is no node of the datastore, but the resource is not ours: left alone
        made = lab.nodestatus("cluster", "request", "--all-nodes", "--period",
                              str(RESOURCE_PERIOD), *lab.datastore)
        assert made.stdout.splitlines() == [
            "created nodestatus-node1 (node node1)", "unchanged nodestatus-node2 (node node2)",
            "unchanged nodestatus-node3 (node node3)"]
        wait_for(lambda: store.status("nodestatus-node1"), 15,
                 "node1's agent fills the new resource")
    finally:
        store.drop("nodestatus-node9")
    if lab.kind == "kubernetes":                          # type: ignore[attr-defined]
        puts = store.api.puts                             # type: ignore[attr-defined]
        # Calico's CRD has no status subresource: every status went in a whole-object PUT
        assert [p for p in puts if p[3] == 200] and not [p for p in puts
                                                         if p[0].endswith("/status")]
