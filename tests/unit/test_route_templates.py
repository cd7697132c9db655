"""Route-line templates: a route line whose text after the net column was seen before is
built by copying the earlier Route. The copies must be exactly what a full parse builds,
whatever follows the line (next hops, ``Type:``, attributes), across tables and replies."""
import pytest
from hypothesis import given, settings, strategies as st

from nodestatus import ParseError, Parser, Route, parse
from nodestatus import _birdparse
from nodestatus.structs import Nexthop


@pytest.fixture
def no_templates():
    assert _birdparse._use_templates(False) is False
    yield
    _birdparse._use_templates(True)


def both(data: bytes):
    """(records with templates, records without): the second is the reference."""
    assert _birdparse._use_templates(True), "Route layout check failed: templates unused"
    try:
        fast = parse(data)
        _birdparse._use_templates(False)
        slow = parse(data)
    finally:
        _birdparse._use_templates(True)
    return fast, slow


TAIL = b"via 10.0.0.2 on eth0 [Mesh_10_0_0_2 06:22:13] * (100/0) [i]"


def test_copies_equal_full_parse_and_keep_their_own_prefix():
    data = b"".join(b"%s%d.0.0.0/8  %s\n" % (b"1007-" if i == 1 else b" ", i, TAIL)
                    for i in range(1, 6)) + b"0000 \n"
    fast, slow = both(data)
    assert fast == slow
    assert [r.prefix for r in fast] == ["%d.0.0.0/8" % i for i in range(1, 6)]
    assert all(r.nexthops == (Nexthop("10.0.0.2", "eth0"),) and r.protocol == "Mesh_10_0_0_2"
               and r.preference == 100 and r.metric == 0 and r.bgp_origin == "i" for r in fast)
    assert len({id(r) for r in fast}) == 5


def test_repeated_line_then_extended_by_next_hops_type_and_attributes():
    data = (
        b"1007-10.1.0.0/16       unicast [static1 06:05:05] * (200)\n"
        b" 10.2.0.0/16       unicast [static1 06:05:05] * (200)\n"     # a copy...
        b" \tvia 10.0.0.2 on eth0 weight 2\n"                            # ...then extended
        b" \tvia 10.0.0.3 on eth0 weight 1\n"
        b" 10.3.0.0/16       unicast [static1 06:05:05] * (200)\n"
        b"1008-\tType: static unicast univ\n"
        b"1012-\tBGP.local_pref: 100\n"
        b"1007-10.4.0.0/16       unicast [static1 06:05:05] * (200)\n"
        b"0000 \n")
    fast, slow = both(data)
    assert fast == slow
    r1, r2, r3, r4 = fast
    assert r1.nexthops == () and r4.nexthops == ()
    assert r2.nexthops == (Nexthop("10.0.0.2", "eth0", 2), Nexthop("10.0.0.3", "eth0", 1))
    assert (r3.source, r3.scope, r3.bgp.local_pref) == ("static", "univ", 100)
    assert r4.source is None and r4.bgp is None and r4.preference == 200


def test_templates_carry_the_table_heading():
    data = (
        b"1007-Table master4:\n"
        b" 10.1.0.0/16          unicast [static1 06:05:05] * (200)\n"
        b" 10.2.0.0/16          unicast [static1 06:05:05] * (200)\n"
        b" \n"
        b" Table t2:\n"
        b" 10.3.0.0/16          unicast [static1 06:05:05] * (200)\n"
        b" 10.4.0.0/16          unicast [static1 06:05:05] * (200)\n"
        b"0000 \n")
    fast, slow = both(data)
    assert fast == slow
    assert [r.table for r in fast] == ["master4", "master4", "t2", "t2"]


def test_alternatives_and_a_second_reply():
    reply = (b"1007-10.1.0.0/16       " + TAIL + b"\n"
             b"                   via 10.0.0.3 on eth0 [Mesh_10_0_0_3 06:22:13] (100/0) [i]\n"
             b" 10.2.0.0/16       " + TAIL + b"\n"
             b"                   via 10.0.0.3 on eth0 [Mesh_10_0_0_3 06:22:13] (100/0) [i]\n"
             b"0000 \n")
    fast, slow = both(reply + reply)
    assert fast == slow
    assert [(r.prefix, r.primary) for r in fast] == [
        ("10.1.0.0/16", True), ("10.1.0.0/16", False),
        ("10.2.0.0/16", True), ("10.2.0.0/16", False)] * 2


def test_origin_tags_are_applied_to_the_copies():
    body = b"via 192.0.2.1 on eth0 [bgp1 2026-02-09] * (100)"
    tags = [b" [AS1i]", b" [AS2e]", b" [AS4200000000?]", b" [i]", b" [?]", b" []", b" [AS3]",
            b" [AS5x]", b"", b" E2 [AS6i]", b" E2 [AS7i]", b" [AS8i] [AS9i]", b" [AS8i] [AS10i]",
            b" [AS11i]"]
    data = b"1007-" + b" ".join(b"10.%d.0.0/16  %s%s\n" % (k, body, t)
                                for k, t in enumerate(tags)) + b"0000 \n"
    fast, slow = both(data)
    assert fast == slow
    got = [(r.bgp_origin, r.bgp_origin_as, r.info) for r in fast]
    assert got == [
        ("i", 1, None), ("e", 2, None), ("?", 4200000000, None), ("i", None, None),
        ("?", None, None), (None, None, None), (None, 3, None), (None, None, "[AS5x]"),
        (None, None, None), ("i", 6, "E2"), ("i", 7, "E2"), ("i", 8, "[AS9i]"),
        ("i", 8, "[AS10i]"), ("i", 11, None)]


def test_a_detail_reply_leaves_no_template_with_its_attributes():
    line = b"10.1.0.0/16       " + TAIL + b"\n"
    plain = b"1007-" + line + b" " + line.replace(b"10.1.", b"10.2.") + b"0000 \n"
    for extra in (b"1008-\tType: BGP unicast univ\n", b"1012-\tBGP.local_pref: 100\n",
                  b" \tvia 10.0.0.9 on eth1\n"):
        fast, slow = both(b"1007-" + line + extra + b"0000 \n" + plain)
        assert fast == slow
        assert fast[0] != fast[1]
        assert fast[1].bgp is None and fast[1].source is None and len(fast[1].nexthops) == 1


def test_a_bad_line_after_copies_keeps_them_in_partial():
    data = (b"1007-10.1.0.0/16       " + TAIL + b"\n"
            b" 10.2.0.0/16       " + TAIL + b"\n"
            b" 10.3.0.0/16       via 10.0.0.2 on eth0 (100)\n"   # no [protocol time]
            b"0000 \n")
    with pytest.raises(ParseError) as info:
        parse(data)
    assert [r.prefix for r in info.value.partial if isinstance(r, Route)] == [
        "10.1.0.0/16", "10.2.0.0/16"]
    assert info.value.line == 3


def test_full_table_shape_pauses_lookups_and_stays_exact():
    """More distinct texts than the template window: lookups pause and resume."""
    lines = [b"%d.%d.%d.0/24     via 192.0.2.1 on eth0 [bgp1 2026-02-09] * (100) [AS%di]\n"
             % (1 + i // 65536, (i // 256) % 256, i % 256, 64512 + i) for i in range(20000)]
    lines += [b"%d.%d.0.0/16     via 192.0.2.1 on eth0 [bgp1 2026-02-09] * (100) [AS7i]\n"
              % (100 + i // 256, i % 256) for i in range(10000)]
    data = b"1007-" + b" ".join(lines) + b"0000 \n"
    fast, slow = both(data)
    assert len(fast) == 30000 and fast == slow
    assert fast[-1].bgp_origin_as == 7 and fast[0].bgp_origin_as == 64512


LINES = [
    b" 10.%d.0.0/16       via 10.0.0.2 on eth0 [Mesh_10_0_0_2 06:22:13] * (100/0) [i]",
    b" 10.%d.0.0/16       via 10.0.0.3 on eth0 [Mesh_10_0_0_3 06:22:13] (100/0) [AS65001i]",
    b"                   via 10.0.0.3 on eth0 [Mesh_10_0_0_3 06:22:13] (100/0) [i]",
    b" 10.%d.0.0/16       multipath [static1 06:05:05] * (200)",
    b" 10.%d.0.0/16       unicast [static1 06:05:05] * (200)",
    b" 10.%d.0.0/16       blackhole [static1 06:05:05] * (200)",
    b" 10.%d.0.1/32       dev cali0123456789a [kernel1 06:22:12] * (10)",
    b" \tvia 10.0.0.2 on eth0 weight 2",
    b" \tvia 10.0.0.4 on eth1",
    b"1008-\tType: BGP unicast univ",
    b"1012-\tBGP.as_path: 65001 65002",
    b" \tBGP.community: (65000,1)",
    b" \t\t(65000,3)",
    b" \tKernel.metric: 1024",
    b"1007-Table t%d:",
    b"1007- ",
    b"0000 \n1007-10.%d.0.0/16       unicast [static1 06:05:05] * (200)",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LINES), st.integers(0, 3)), max_size=40),
       st.integers(1, 50))
def test_any_line_sequence_parses_the_same_with_and_without_templates(picks, chunk):
    body = b"\n".join(line % n if b"%d" in line else line for line, n in picks)
    data = b"1007-10.0.0.0/8        unicast [static1 06:05:05] * (200)\n" + body + b"\n0000 \n"

    def run():
        p = Parser()
        out = []
        try:
            for i in range(0, len(data), chunk):
                out += p.feed(data[i:i + chunk])
            out += p.close()
        except ParseError as exc:
            return ("error", str(exc), exc.line, exc.partial)
        return ("ok", out)

    assert _birdparse._use_templates(True)
    try:
        fast = run()
        _birdparse._use_templates(False)
        slow = run()
    finally:
        _birdparse._use_templates(True)
    assert fast == slow
