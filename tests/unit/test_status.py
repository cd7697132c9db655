"""Status assembly: Calico's mapping rules over real captures, and the 'better' points
(BIRD 2 split by family, multipath, unknown protocols, no-socket families)."""
from pathlib import Path

import pytest

from nodestatus import parse
from nodestatus.resource import CalicoNodeStatus, CalicoNodeStatusSpec, ObjectMeta
from nodestatus.sources import collect_dumps
from nodestatus.status import (
    FamilyData,
    RouteMapper,
    assemble_status,
    bgp_status,
    build_status,
    decode_peer_ip,
    peer_of,
)
from nodestatus.structs import BgpSession, Nexthop, Protocol, Route

DATA = Path(__file__).resolve().parent.parent / "data" / "captures"
LAB = DATA / "calico-lab-node1"


def _files(fam):
    return [str(LAB / f"v{fam}" / n) for n in ("show_status.raw", "show_protocols_all.raw",
                                               "show_route.raw")]


@pytest.fixture(scope="module")
def lab():
    return collect_dumps(_files(4), _files(6))


def _resource(classes=("Agent", "BGP", "Routes")):
    return CalicoNodeStatus(api_version="projectcalico.org/v3", kind="CalicoNodeStatus",
                            metadata=ObjectMeta(name="node1"),
                            spec=CalicoNodeStatusSpec(node="node1", classes=list(classes),
                                                      update_period_seconds=10))


def test_agent_from_the_lab_node(lab):
    st = assemble_status(["Agent"], *lab)
    for d in (st.agent.bird_v4, st.agent.bird_v6):
        assert (d.state, d.version, d.router_id) == ("Ready", "1.6.8", "10.77.0.1")
        assert d.last_boot_time == "2026-11-27 06:22:11"
        assert d.last_reconfiguration_time == "2026-11-27 06:22:11"


def test_bgp_peers_from_the_lab_node(lab):
    bgp = assemble_status(["BGP"], *lab).bgp
    assert [(p.peer_ip, p.type, p.state, p.since) for p in bgp.peers_v4] == [
        ("10.77.0.2", "NodeMesh", "Established", "06:22:13"),
        ("10.77.0.3", "NodeMesh", "Established", "06:22:14"),
        ("10.77.0.250", "GlobalPeer", "Connect", "06:22:11"),
        ("10.77.0.251", "NodePeer", "Connect", "06:22:11")]
    assert [p.peer_ip for p in bgp.peers_v6] == ["fd77::2", "fd77::3", "fd77::250", "fd77::251"]
    assert (bgp.number_established_v4, bgp.number_not_established_v4) == (2, 2)
    assert (bgp.number_established_v6, bgp.number_not_established_v6) == (2, 2)


def test_routes_from_the_lab_node(lab):
    routes = assemble_status(["Routes"], *lab).routes
    v4 = {r.destination: r for r in routes.routes_v4}
    mesh = v4["192.168.2.0/26"]
    assert (mesh.type, mesh.gateway, mesh.interface) == ("FIB", "10.77.0.2", "eth0")
    assert (mesh.learned_from.source_type, mesh.learned_from.peer_ip) == ("NodeMesh", "10.77.0.2")
    own = v4["192.168.1.0/26"]
    assert (own.gateway, own.interface, own.learned_from.source_type) == ("N/A", "blackhole", "Static")
    assert v4["10.77.0.0/24"].learned_from.source_type == "Direct"
    assert v4["0.0.0.0/0"].learned_from.source_type == "Kernel"
    assert v4["192.168.1.1/32"].interface.startswith("cali")
    v6 = {r.destination: r for r in routes.routes_v6}
    assert v6["fd77:0:0:102::/122"].learned_from.peer_ip == "fd77::2"
    assert v6["fd77:0:0:101::/122"].interface == "blackhole"
    assert len(routes.routes_v4) == 7 and len(routes.routes_v6) == 7


def test_build_status_sets_last_updated_utc(lab):
    import datetime

    t = datetime.datetime(2021, 10, 18, 15, 22, 3, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    res = build_status(_resource(), *lab, now=t)
    assert res.status.last_updated == "2021-10-18T13:22:03Z"
    assert res.spec.node == "node1"


def test_unreachable_family_is_notready_and_empty(lab):
    v4, _ = lab
    v6 = FamilyData(family=6)
    st = assemble_status(["Agent", "BGP", "Routes"], v4, v6)
    assert st.agent.bird_v6.state == "NotReady" and st.agent.bird_v6.version == ""
    assert st.bgp.peers_v6 == [] and st.routes.routes_v6 == []
    assert st.bgp.number_established_v4 == 2


def test_bird2_capture_serves_both_families():
    d = DATA / "2.0.12"
    v4, v6 = collect_dumps([str(d / "show_status.raw.txt"), str(d / "show_protocols_all.raw.txt"),
                            str(d / "show_route_all.raw.txt")])
    st = assemble_status(["Agent", "Routes"], v4, v6)
    assert st.agent.bird_v4.version == st.agent.bird_v6.version == "2.0.12"
    assert st.agent.bird_v6.state == "Ready"
    assert all(":" not in r.destination for r in st.routes.routes_v4)
    assert st.routes.routes_v6 and all(":" in r.destination for r in st.routes.routes_v6)
    # multipath: one entry per next hop
    mp = [r for r in st.routes.routes_v4 if r.destination == "10.11.0.0/16" and r.type == "FIB"]
    assert sorted((r.gateway, r.interface) for r in mp) == [
        ("10.0.0.2", "eth0"), ("10.0.1.2", "cali0123456789a")]
    alt = [r for r in st.routes.routes_v4 if r.destination == "10.11.0.0/16" and r.type == "RIB"]
    assert [(r.gateway, r.learned_from.source_type) for r in alt] == [("10.0.0.3", "Static")]
    prohibited = [r for r in st.routes.routes_v4 if r.destination == "10.14.0.0/16"]
    assert prohibited[0].interface == "prohibited" and prohibited[0].gateway == "N/A"


def test_unknown_protocols_are_classified_by_type_not_dropped():
    protos = [Protocol(name="upstream_rr", proto="BGP",
                       bgp=BgpSession(neighbor_address="10.77.0.102")),
              Protocol(name="my_statics", proto="Static"),
              Protocol(name="ospf1", proto="OSPF")]
    m = RouteMapper(protos)
    def one(proto):
        (e,) = m.entries(Route("10.0.0.0/8", None, "unicast", (Nexthop("1.1.1.1", "eth0"),),
                               proto, "x", None, True))
        return e.learned_from
    assert (one("upstream_rr").source_type, one("upstream_rr").peer_ip) == ("BGPPeer", "10.77.0.102")
    assert one("my_statics").source_type == "Static"
    assert one("ospf1").source_type == "" and m.unclassified == {"ospf1": 1}
    assert one("never_seen").source_type == ""


def test_peer_names():
    assert decode_peer_ip("10_128_0_242") == "10.128.0.242"
    assert decode_peer_ip("fd80_24e2_f998_72d7__2") == "fd80:24e2:f998:72d7::2"
    p = Protocol(name="Mesh_fd80_24e2_f998_72d7__2", proto="BGP")
    assert peer_of(p) == ("NodeMesh", "fd80:24e2:f998:72d7::2")
    with_detail = Protocol(name="Global_10_0_0_1", proto="BGP",
                           bgp=BgpSession(neighbor_address="fe80::1%eth0"))
    assert peer_of(with_detail) == ("GlobalPeer", "fe80::1")
    assert peer_of(Protocol(name="Mesh_1", proto="Static")) is None
    assert peer_of(Protocol(name="upstream", proto="BGP")) is None


def test_session_states_and_counts_follow_the_protocol_state():
    rows = parse(
        b"2002-name     proto    table    state  since       info\n"
        b"1002-Mesh_10_0_0_2 BGP      master   up     06:22:13    Established   \n"
        b" Mesh_10_0_0_3 BGP      master   start  06:22:13    Passive       \n"
        b" Node_10_0_0_4 BGP      master   down   06:22:13    \n"
        b" Global_10_0_0_5 BGP      master   start  06:22:13    Active        Socket: Connection refused\n"
        b"0000 \n")
    v4 = FamilyData(family=4, reachable=True, protocols=rows)
    bgp = bgp_status(v4, FamilyData(family=6))
    assert [(p.peer_ip, p.state) for p in bgp.peers_v4] == [
        ("10.0.0.2", "Established"), ("10.0.0.3", "Idle"), ("10.0.0.4", "Idle"),
        ("10.0.0.5", "Active")]
    assert (bgp.number_established_v4, bgp.number_not_established_v4) == (1, 3)


def test_truncated_capture_fails_the_whole_status(tmp_path):
    from nodestatus import TruncatedReplyError

    cut = tmp_path / "route.raw"
    cut.write_bytes((LAB / "v4" / "show_route.raw").read_bytes()[:200])
    with pytest.raises(TruncatedReplyError) as ei:
        collect_dumps([str(LAB / "v4" / "show_status.raw"), str(cut)])
    assert str(cut) in str(ei.value)


def test_sync_error_route_is_rib_and_kept_in_the_records(tmp_path):
    """BIRD's `!` marks its best route that the kernel refused: Calico's `*` rule makes it
    RIB (it is not in the forwarding table); the record keeps ``sync_error``."""
    raw = (LAB / "v4" / "show_route.raw").read_bytes()
    line = b" 192.168.2.0/26     via 10.77.0.2 on eth0 [Mesh_10_77_0_2 06:22:13] * (100/0) [i]"
    assert line in raw
    bang = tmp_path / "show_route.raw"
    bang.write_bytes(raw.replace(line, line.replace(b"] * (", b"] ! (")))
    rec = [r for r in parse(bang.read_bytes()) if r.prefix == "192.168.2.0/26"]
    assert [(r.primary, r.sync_error) for r in rec] == [(True, True)]
    v4, _ = collect_dumps([str(LAB / "v4" / "show_status.raw"),
                           str(LAB / "v4" / "show_protocols_all.raw"), str(bang)])
    types = {r.destination: r.type for r in v4.routes}
    assert types["192.168.2.0/26"] == "RIB"
    assert types["192.168.3.0/26"] == "FIB"
    assert v4.sync_failed == 1                      # counted for the metrics


def test_dump_files_are_all_used_or_the_status_fails(tmp_path):
    """Every file given must hold something a status uses; any order works."""
    from nodestatus.errors import InputError

    v4a, _ = collect_dumps(list(reversed(_files(4))))
    v4b, _ = collect_dumps(_files(4))
    assert v4a.routes == v4b.routes and v4a.status == v4b.status
    junk = tmp_path / "interfaces.txt"
    junk.write_bytes((DATA / "1.6.8" / "show_interfaces.birdc.txt").read_bytes())
    with pytest.raises(InputError, match="lo up") as ei:
        collect_dumps(_files(4) + [str(junk)])
    assert ei.value.source == str(junk)


def test_route_count_that_disagrees_is_noted(tmp_path):
    """A `show route count` capture is a check of the route reply: plain birdc text has no
    end marker, so a count larger than the routes read says the capture may be cut."""
    notes = []
    collect_dumps(_files(4) + [str(LAB / "v4" / "show_route_count.raw")], notes=notes)
    assert notes == []
    cut = tmp_path / "show_route.txt"
    cut.write_bytes(b"\n".join((LAB / "v4" / "show_route.txt").read_bytes().splitlines()[:4])
                    + b"\n")
    files = _files(4)[:2] + [str(cut), str(LAB / "v4" / "show_route_count.raw")]
    collect_dumps(files, notes=notes)
    assert len(notes) == 1 and "is the capture cut?" in notes[0] and str(cut) in notes[0]
