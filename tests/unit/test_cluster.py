"""``nodestatus cluster``: the view and its problems from stored statuses (made-up nodes in
the lab's shape: node N is 10.77.0.N / fd77::N with block 192.168.N.0/26), and ``cluster
request`` against the fake API server in Calico's CRD shape (Nodes included)."""
from __future__ import annotations

import copy
import datetime
import json
from typing import Dict, List, Optional

import pytest

from nodestatus import cli
from nodestatus.cluster import (REQUESTED_LABEL, build_view, delete_requested, render_view,
                                request)
from nodestatus.sinks import NodeInfo, Stored

NOW = datetime.datetime(2026, 11, 27, 8, 0, 0, tzinfo=datetime.timezone.utc)


def ts(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def addr(n: int, fam: int = 4) -> str:
    return f"10.77.0.{n}" if fam == 4 else f"fd77::{n}"


def block(n: int) -> str:
    return f"192.168.{n}.0/26"


def route(dest: str, src: str, peer: str = "", rtype: str = "FIB", iface: str = "eth0") -> dict:
    lf = {"sourceType": src}
    if peer:
        lf["peerIP"] = peer
    return {"type": rtype, "destination": dest, "gateway": peer or "N/A", "interface": iface,
            "learnedFrom": lf}


def status(n: int, peers: Dict[int, str], *, age: float = 5, v6: str = "NotReady",
           v4: str = "Ready", routes: Optional[List[dict]] = None) -> dict:
    """Node ``n``'s status: its IPv4 peers ``{other node: state}``, its own block, the
    blocks of the nodes it is Established with (unless ``routes`` is given)."""
    peer_list = [{"peerIP": addr(o), "type": "NodeMesh", "state": st, "since": "06:22:13"}
                 for o, st in sorted(peers.items())]
    est = sum(1 for st in peers.values() if st == "Established")
    if routes is None:
        routes = [route(block(n), "Static", iface="blackhole"),
                  route(f"192.168.{n}.5/32", "Kernel", iface=f"cali{n}")]
        routes += [route(block(o), "NodeMesh", addr(o)) for o, st in sorted(peers.items())
                   if st == "Established"]
    return {"lastUpdated": ts(age),
            "agent": {"birdV4": {"state": v4, "version": "1.6.8", "routerID": addr(n)},
                      "birdV6": {"state": v6}},
            "bgp": {"numberEstablishedV4": est, "numberNotEstablishedV4": len(peers) - est,
                    "numberEstablishedV6": 0, "numberNotEstablishedV6": 0,
                    "peersV4": peer_list},
            "routes": {"routesV4": routes}}


def stored(name: str, node: str, st: Optional[dict], period: int = 10,
           classes=("Agent", "BGP", "Routes"), labels: Optional[dict] = None) -> Stored:
    doc = {"apiVersion": "projectcalico.org/v3", "kind": "CalicoNodeStatus",
           "metadata": {"name": name, **({"labels": labels} if labels else {})},
           "spec": {"node": node, "classes": list(classes), "updatePeriodSeconds": period}}
    if st is not None:
        doc["status"] = st
    return Stored(name=name, version="1", raw=doc)


def mesh(**override) -> List[Stored]:
    """Three nodes, full mesh Established; ``nodeN=status`` replaces one."""
    full = {n: status(n, {o: "Established" for o in (1, 2, 3) if o != n}) for n in (1, 2, 3)}
    for key, st in override.items():
        full[int(key[-1])] = st
    return [stored(f"node{n}-status", f"node{n}", st) for n, st in full.items()]


NODES = [NodeInfo(name=f"node{n}", ipv4=addr(n), ipv6=addr(n, 6)) for n in (1, 2, 3)]


def kinds(view) -> List[tuple]:
    return [(p.kind, tuple(p.nodes), p.family) for p in view.problems]


def test_a_healthy_mesh_has_no_problem():
    view = build_view(mesh(), NODES, NOW)
    assert kinds(view) == []
    row = view.nodes[0]
    assert (row.node, row.bird_v4, row.bird_v6, row.established_v4, row.configured_v4,
            row.routes_v4, row.age_seconds) == ("node1", "Ready", "NotReady", 2, 2, 4, 5.0)
    text = render_view(view, "wide")
    assert "No problems found." in text and "| node1 " in text and "| 2/2 " in text


def test_asymmetric_session_names_both_ends():
    view = build_view(mesh(node2=status(2, {1: "Active", 3: "Established"})), NODES, NOW)
    assert kinds(view) == [("asymmetric-session", ("node1", "node2"), 4)]
    assert view.problems[0].detail == (
        "node1 reports its IPv4 session to node2 (10.77.0.2) Established, but node2 reports "
        "node1 (10.77.0.1) Active")


def test_a_session_the_other_end_does_not_have():
    view = build_view(mesh(node3=status(3, {1: "Established"})), NODES, NOW)
    problems = [p for p in view.problems if p.kind == "asymmetric-session"]
    assert [(p.nodes, p.detail.split("but ")[1]) for p in problems] == [
        (["node2", "node3"], "node3 reports no session to node2 (10.77.0.2)")]


def test_peers_are_matched_by_router_id_without_a_node_list():
    view = build_view(mesh(node2=status(2, {1: "Idle", 3: "Established"})), [], NOW)
    assert ("asymmetric-session", ("node1", "node2"), 4) in kinds(view)


def test_stale_and_missing_statuses():
    items = mesh(node2=status(2, {1: "Established", 3: "Established"}, age=25))
    items.append(stored("node1-once", "node1", status(1, {}, age=99999), period=0))
    items.append(stored("node3-new", "node3", None))
    known = NODES + [NodeInfo(name="node4", ipv4=addr(4))]
    view = build_view(items, known, NOW)
    assert kinds(view) == [("stale-status", ("node2",), None), ("no-status", ("node3",), None),
                           ("no-status", ("node4",), None)]
    assert "node2-status (node node2) was last updated 25s ago, more than twice its period " \
           "of 10s" == view.problems[0].detail
    assert view.nodes[3].node == "node4" and view.nodes[3].resources == []


def test_not_ready_only_for_a_family_the_cluster_runs():
    view = build_view(mesh(node3=status(3, {1: "Established", 2: "Established"},
                                        v4="NotReady")), NODES, NOW)
    assert kinds(view) == [("daemon-not-ready", ("node3",), 4)]       # v6: nobody runs it


def test_missing_block_and_borrowed_host_route():
    # node3 uses 192.168.1.50 from node1's block (a borrowed address): it exports the /32
    n3 = status(3, {1: "Established", 2: "Established"})
    n3["routes"]["routesV4"].append(route("192.168.1.50/32", "Kernel", iface="cali50"))
    n1 = status(1, {2: "Established", 3: "Established"})
    n1["routes"]["routesV4"] = [r for r in n1["routes"]["routesV4"]
                                if r["destination"] != block(3)]
    n2 = status(2, {1: "Established", 3: "Established"})
    n2["routes"]["routesV4"].append(route("192.168.1.50/32", "NodeMesh", addr(3)))
    view = build_view(mesh(node1=n1, node2=n2, node3=n3), NODES, NOW)
    assert kinds(view) == [("missing-block", ("node1", "node3"), 4)]
    assert view.problems[0].detail == ("node1 has an Established IPv4 session to node3 but "
                                       "no route to node3's 192.168.3.0/26, 192.168.1.50/32")


def test_json_and_yaml_outputs():
    view = build_view(mesh(node2=status(2, {1: "Active", 3: "Established"})), NODES, NOW)
    doc = json.loads(render_view(view, "json"))
    assert doc["problems"][0]["kind"] == "asymmetric-session"
    assert doc["nodes"][1]["establishedV4"] == 1 and doc["nodes"][1]["configuredV4"] == 2
    import yaml

    assert yaml.safe_load(render_view(view, "yaml")) == doc


# --------------------------------------------------------------------------- request


kube = pytest.importorskip("kubernetes")
from fakes.kube_api import FakeKubeAPI  # noqa: E402
from nodestatus.sinks.kube import KubeSink  # noqa: E402

KEY, VALUE = REQUESTED_LABEL


@pytest.fixture
def api():
    fake = FakeKubeAPI().start()
    for n in (1, 2, 3):
        fake.add_node(f"node{n}", ipv4=f"{addr(n)}/24", ipv6=f"{addr(n, 6)}/64",
                      internal_ips=(addr(n),))
    yield fake
    fake.stop()


@pytest.fixture
def sink(api):
    s = KubeSink(host=api.url, page_size=2)
    yield s
    s.close()


def test_nodes_from_calico_annotations(api, sink):
    api.add_node("node4", internal_ips=("10.77.0.4", "fd77::4"))     # no calico-node yet
    assert sink.list_nodes() == NODES + [NodeInfo(name="node4", ipv4="10.77.0.4",
                                                  ipv6="fd77::4")]


def test_request_creates_updates_and_leaves_others_alone(api, sink):
    api.create("nodestatus-node2", {"node": "node2", "classes": ["BGP"],
                                    "updatePeriodSeconds": 5})       # someone else's
    before = copy.deepcopy(api.objects["nodestatus-node2"])
    acts = request(sink, sink.list_nodes(), ["Agent", "BGP", "Routes"], 30)
    assert [(a.action, a.name) for a in acts] == [
        ("created", "nodestatus-node1"), ("skipped", "nodestatus-node2"),
        ("created", "nodestatus-node3")]
    obj = api.objects["nodestatus-node1"]
    assert obj["metadata"]["labels"] == {KEY: VALUE}
    assert obj["spec"] == {"node": "node1", "classes": ["Agent", "BGP", "Routes"],
                           "updatePeriodSeconds": 30}
    assert api.objects["nodestatus-node2"] == before
    # again: nothing to do
    acts = request(sink, sink.list_nodes(), ["Agent", "BGP", "Routes"], 30)
    assert [a.action for a in acts] == ["unchanged", "skipped", "unchanged"]
    # the agent writes a status just before our update: the conflict is retried
    api.update("nodestatus-node1", status={"lastUpdated": "2026-11-27T07:59:00Z"})
    api.before_put.append(lambda name: api.update(      # runs before node1's PUT
        name, status={"lastUpdated": "2026-11-27T08:00:00Z"}))
    acts = request(sink, sink.list_nodes(), ["BGP"], 10)
    assert [a.action for a in acts] == ["updated", "skipped", "updated"]
    node1 = api.objects["nodestatus-node1"]
    assert node1["spec"]["classes"] == ["BGP"] and node1["spec"]["updatePeriodSeconds"] == 10
    assert node1["status"] == {"lastUpdated": "2026-11-27T08:00:00Z"}    # kept as written
    assert [p[3] for p in api.puts].count(409) == 1


def test_a_node_name_no_resource_can_carry_is_skipped(api, sink):
    api.add_node("n" * 250)
    acts = request(sink, sink.list_nodes(), ["BGP"], 10)
    assert [a.action for a in acts] == ["skipped", "created", "created", "created"]
    assert "metadata.name" in acts[0].detail and len(api.objects) == 3


def test_request_deletes_its_own_for_gone_nodes_and_delete_removes_exactly_those(api, sink):
    api.create("hand-made", {"node": "node1", "classes": ["BGP"], "updatePeriodSeconds": 5})
    request(sink, sink.list_nodes(), ["BGP"], 10)
    del api.nodes["node3"]
    acts = request(sink, sink.list_nodes(), ["BGP"], 10)
    assert [(a.action, a.name) for a in acts][-1] == ("deleted", "nodestatus-node3")
    assert sorted(api.objects) == ["hand-made", "nodestatus-node1", "nodestatus-node2"]
    api.update("nodestatus-node1", status={"lastUpdated": "x"})       # the agent writes
    acts = delete_requested(sink)
    assert [(a.action, a.name) for a in acts] == [("deleted", "nodestatus-node1"),
                                                  ("deleted", "nodestatus-node2")]
    assert sorted(api.objects) == ["hand-made"]
    assert all(code == 200 for _, body, code in api.deletes)
    assert all(body["preconditions"]["resourceVersion"] for _, body, _ in api.deletes)


def test_delete_precondition_protects_a_changed_resource(api, sink):
    request(sink, sink.list_nodes(), ["BGP"], 10)
    items, _ = sink.list()
    old = next(s for s in items if s.name == "nodestatus-node1")
    api.update("nodestatus-node1", status={"lastUpdated": "y"})
    from nodestatus.errors import ConflictError

    with pytest.raises(ConflictError, match="Precondition failed"):
        sink.delete(old)
    assert "nodestatus-node1" in api.objects


def test_cli_request_and_view(api, tmp_path, capsys):
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    base = ["--datastore", "kubernetes", "--kubeconfig", kubeconfig]
    assert cli.main(["cluster", "request", "--all-nodes", "--period", "20", *base]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [f"created nodestatus-node{n} (node node{n})" for n in (1, 2, 3)]
    assert cli.main(["cluster", *base]) == 1            # requested, not reported yet
    cap = capsys.readouterr()
    assert cap.out.count("no-status") == 3 and cap.err == ""
    for n in (1, 2, 3):
        api.update(f"nodestatus-node{n}",
                   status=status(n, {o: "Established" for o in (1, 2, 3) if o != n}, age=1))
    assert cli.main(["cluster", "-o", "json", *base]) == 1         # lastUpdated is real time
    doc = json.loads(capsys.readouterr().out)
    assert [r["node"] for r in doc["nodes"]] == ["node1", "node2", "node3"]
    assert {p["kind"] for p in doc["problems"]} == {"stale-status"}
    assert cli.main(["cluster", "request", "--delete", *base]) == 0
    assert capsys.readouterr().out.count("deleted") == 3
    assert api.objects == {}
