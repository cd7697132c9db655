"""The route grammar: every destination kind, BIRD 1.6 and 2.0 layouts, `all` attributes."""
import pytest

from nodestatus import Route, parse
from nodestatus.structs import Nexthop


def routes(text: str):
    return [r for r in parse(text.encode()) if isinstance(r, Route)]


def test_destinations_16():
    rs = routes(
        "1007-10.12.0.0/16       blackhole [static1 06:05:05] * (200)\n"
        " 10.13.0.0/16       unreachable [static1 06:05:05] * (200)\n"
        " 10.14.0.0/16       prohibited [static1 06:05:05] ! (200)\n"
        " 10.15.0.0/24       dev cali0123456789a [static1 06:05:05] * (200)\n"
        "0000 \n")
    assert [(r.type, r.primary, r.sync_error) for r in rs] == [
        ("blackhole", True, False), ("unreachable", True, False),
        ("prohibited", True, True), ("unicast", True, False)]
    assert rs[0].nexthops == () and rs[3].nexthops == (Nexthop(None, "cali0123456789a"),)


def test_multipath_16_and_alternative_takes_previous_prefix():
    (mp, alt) = routes(
        "1007-10.11.0.0/16       multipath [static1 06:05:05] * (200)\n"
        " \tvia 10.0.0.2 on eth0 weight 2\n"
        " \tvia 10.0.1.2 on cali0123456789a weight 1\n"
        "1007-                   via 10.0.0.3 on eth0 [static-alt.v4 06:04:57] (50)\n"
        "0000 \n")
    assert mp.type == "unicast"
    assert mp.nexthops == (Nexthop("10.0.0.2", "eth0", 2), Nexthop("10.0.1.2", "cali0123456789a", 1))
    assert alt.prefix == "10.11.0.0/16" and alt.protocol == "static-alt.v4"
    assert alt.preference == 50 and not alt.primary


def test_bird2_layout_tables_and_dev_lines():
    rs = routes(
        "1007-Table master4:\n"
        " 10.16.0.0/16         unicast [static4 06:05:21.596] * (200)\n"
        " \tdev eth0\n"
        " \tdev cali0123456789a\n"
        " \n"
        " Table master6:\n"
        " 2001:db8:abcd:1234:5678:9abc:def0:0/112 unicast [static6 06:05:21.596] * (200)\n"
        " \tvia fd00:1::2 on cali0123456789a onlink\n"
        "0000 \n")
    assert [(r.table, r.prefix) for r in rs] == [
        ("master4", "10.16.0.0/16"), ("master6", "2001:db8:abcd:1234:5678:9abc:def0:0/112")]
    assert [h.interface for h in rs[0].nexthops] == ["eth0", "cali0123456789a"]
    assert rs[1].nexthops == (Nexthop("fd00:1::2", "cali0123456789a", None, True),)
    assert rs[1].since == "06:05:21.596"


def test_long_ipv6_prefix_16_single_space():
    (r,) = routes("1007-2001:db8:abcd:1234:5678:9abc:def0:0/112 via fd00:1::2 on cali0123456789a "
                  "[static6 06:05:05] * (200)\n0000 \n")
    assert r.prefix == "2001:db8:abcd:1234:5678:9abc:def0:0/112"
    assert r.nexthops[0].gateway == "fd00:1::2"


@pytest.mark.parametrize("info,expect", [
    ("(100/0) [i]", dict(preference=100, metric=0, bgp_origin="i", bgp_origin_as=None)),
    ("(100) [AS65010i]", dict(preference=100, bgp_origin="i", bgp_origin_as=65010)),
    ("(100/-) [?]", dict(info_flags="/-", bgp_origin="?")),
    ("(100/?) [AS65001?]", dict(info_flags="/?", bgp_origin_as=65001, bgp_origin="?")),
    ("(100-s/20) [AS4200000000e]", dict(info_flags="-s", metric=20, bgp_origin="e",
                                         bgp_origin_as=4200000000)),
    ("(100) []", dict(bgp_origin=None, bgp_origin_as=None, info=None)),
    ("E2 (150/20/10000) [94.142.247.3]", dict(info="E2 [94.142.247.3]", metric=20,
                                              metric2=10000)),
])
def test_info_column(info, expect):
    (r,) = routes(f"1007-10.0.0.0/8         via 192.0.2.9 on eth0 [bgp1 2024-05-01 from 192.0.2.1] * {info}\n0000 \n")
    assert r.from_ == "192.0.2.1" and r.since == "2024-05-01"
    for k, v in expect.items():
        assert getattr(r, k) == v, k


def test_since_with_space_and_from():
    (r,) = routes("1007-10.0.0.0/8         via 192.0.2.9 on eth0 [bgp1 2026-11-27 06:04:57 from 192.0.2.1] * (100)\n0000 \n")
    assert r.since == "2026-11-27 06:04:57" and r.from_ == "192.0.2.1"


ALL_16 = (
    "1007-10.20.0.0/16       via 10.0.1.2 on cali0123456789a [static1 06:05:05] * (200)\n"
    "1008-\tType: BGP unicast univ\n"
    "1012-\tBGP.origin: Incomplete\n"
    " \tBGP.as_path: 65001 { 65002 65003 } 4200000078 ...\n"
    " \tBGP.next_hop: 2001:db8::1 fe80::1\n"
    " \tBGP.med: 50\n"
    " \tBGP.local_pref: 200\n"
    " \tBGP.atomic_aggr: \n"
    " \tBGP.aggregator: 10.0.0.1 AS65000\n"
    " \tBGP.community: (65000,101) (65000,202)\n"
    " \t\t(65000,303)\n"
    " \tBGP.originator_id: 10.0.0.9\n"
    " \tBGP.cluster_list: 10.0.0.7 10.0.0.8\n"
    " \tBGP.ext_community: (rt, 65000, 1) (ro, 10.0.0.1, 7)\n"
    " \tBGP.large_community: (65000, 1, 2)\n"
    " \t\t(4200000000, 3, 4)\n"
    " \tBGP.1f [t]: 01 02\n"
    " \tKernel.metric: 100\n"
    "0000 \n"
)


def test_all_attributes_typed_and_rest_raw():
    (r,) = routes(ALL_16)
    assert (r.source, r.cast, r.scope) == ("BGP", "unicast", "univ")
    b = r.bgp
    assert b.origin == "Incomplete"
    assert b.as_path == (65001, frozenset({65002, 65003}), 4200000078)
    assert b.as_path_truncated
    assert b.next_hop == ("2001:db8::1", "fe80::1")
    assert (b.med, b.local_pref) == (50, 200)
    assert b.atomic_aggr and b.aggregator == ("10.0.0.1", 65000)
    assert b.communities == ((65000, 101), (65000, 202), (65000, 303))
    assert b.large_communities == ((65000, 1, 2), (4200000000, 3, 4))
    assert b.ext_communities == (("rt", "65000", "1"), ("ro", "10.0.0.1", "7"))
    assert b.originator_id == "10.0.0.9" and b.cluster_list == ("10.0.0.7", "10.0.0.8")
    assert r.attrs == {"BGP.1f [t]": "01 02", "Kernel.metric": "100"}


def test_bird2_truncated_as_path_cuts_a_number():
    (r,) = routes(
        "1007-10.20.0.0/16         unicast [static4 06:05:21.596] * (200)\n"
        " \tvia 10.0.1.2 on cali0123456789a\n"
        "1008-\tType: static univ\n"
        "1012-\tBGP.as_path: 4200000079 4200000078 42...\n"
        " \tmy_custom_attr: 42\n"
        "0000 \n")
    assert r.bgp.as_path == (4200000079, 4200000078)
    assert r.bgp.as_path_truncated
    assert (r.source, r.cast, r.scope) == ("static", None, "univ")
    assert r.attrs == {"my_custom_attr": "42"}


def test_bird2_confederation_kept_raw():
    (r,) = routes("1007-10.0.0.0/8 unicast [b 06:05] * (100)\n \tvia 1.1.1.1 on e\n"
                  "1012-\tBGP.as_path: (65001 65002) 3 {4 5}\n0000 \n")
    assert r.bgp.as_path == (65001, 65002, 3, frozenset({4, 5}))
    assert r.bgp.as_path_raw == "(65001 65002) 3 {4 5}"


def test_empty_as_path_and_wrapped_raw_attr():
    (r,) = routes("1007-10.0.0.0/8 unicast [b 06:05] * (100)\n \tvia 1.1.1.1 on e\n"
                  "1012-\tBGP.as_path: \n \tOSPF.x: a\n \t\tb\n0000 \n")
    assert r.bgp.as_path == () and not r.bgp.as_path_truncated
    assert r.attrs == {"OSPF.x": "a b"}


def test_repeated_values_are_shared_not_copied():
    line = "via 10.0.0.2 on eth0 [Mesh_10_0_0_2 06:04:57] * (100/0) [i]"
    text = "1007-10.0.0.0/32 " + line + "\n" + "".join(
        f" 10.0.0.{i}/32 {line}\n" for i in range(1, 50)) + "0000 \n"
    rs = routes(text)
    assert len(rs) == 50
    assert all(r.nexthops is rs[0].nexthops for r in rs)
    assert all(r.protocol is rs[0].protocol and r.since is rs[0].since for r in rs)


def test_route_count_lines():
    recs = parse(b"1007-19 of 19 routes for 17 networks in table master4\n"
                 b" 0 of 0 routes for 0 networks in table t_empty\n"
                 b"0014 Total: 19 of 19 routes for 17 networks in 2 tables\n")
    assert [(c.shown, c.total, c.networks, c.table, c.is_total) for c in recs] == [
        (19, 19, 17, "master4", False), (0, 0, 0, "t_empty", False), (19, 19, 17, None, True)]
    assert recs[2].tables == 2
    (c,) = parse(b"0014 15 of 16 routes for 13 networks\n")
    assert (c.shown, c.total, c.networks, c.table) == (15, 16, 13, None)
