"""The per-prefix re-check's rules, without a kernel: what a FIB_MATCH reply proves
(``kernel.fib_match_answer``, on replies encoded by pyroute2's own rtmsg/nlmsgerr, i.e. not
by our decoder's builders), and what the FIB check settles with it (``fibcheck._proven``).
The same rules against real kernels: tests/integration/test_kernel.py."""
from __future__ import annotations

import errno

import pytest
from pyroute2.netlink import nlmsgerr
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from nodestatus import _rtnl
from nodestatus.errors import KernelReadError
from nodestatus.fibcheck import _proven
from nodestatus.kernel import FibMatch, _lookup_address, fib_match_answer

RTM_NEWROUTE, RTM_F_CLONED = 24, 0x200


def reply(prefix: str, *, table: int = 254, proto: int = 12, rtype: int = 1, flags: int = 0,
          gateway: str = "", oif: int = 3, metric: int = 0) -> bytes:
    """A reply as the kernel sends it for one route (rtm_table 252 = RT_TABLE_COMPAT past
    255, the real id in RTA_TABLE)."""
    address, _, plen = prefix.partition("/")
    msg = rtmsg()
    msg["header"]["type"] = RTM_NEWROUTE
    msg["header"]["sequence_number"] = 1
    msg["family"] = 10 if ":" in address else 2
    msg["dst_len"] = int(plen)
    msg["table"] = table if table < 256 else 252
    msg["proto"], msg["type"], msg["flags"] = proto, rtype, flags
    attrs = [("RTA_TABLE", table), ("RTA_DST", address), ("RTA_OIF", oif)]
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    if metric:
        attrs.append(("RTA_PRIORITY", metric))
    msg["attrs"] = attrs
    msg.encode()
    return bytes(msg.data)


def error(code: int) -> bytes:
    msg = nlmsgerr()
    msg["header"]["type"] = 2
    msg["error"] = -code
    msg.encode()
    return bytes(msg.data)


def answer(buf: bytes, prefix: str, table: int = 254) -> FibMatch:
    return fib_match_answer(buf, len(buf), _rtnl.pack_key(prefix), table)


# ------------------------------------------------------------------------------ the replies


@pytest.mark.parametrize("prefix,gateway", [("10.1.0.0/16", "10.0.0.2"),
                                            ("2001:db8:1::/48", "fd00::2")])
def test_exact_answer_is_the_route_in_the_dumps_layout(prefix, gateway):
    got = answer(reply(prefix, gateway=gateway, metric=100), prefix)
    want = _rtnl.pack_expected(prefix, "unicast", [(gateway, 3, 1)], metric=100)[1]
    assert got == FibMatch(verdict="route", value=want)


def test_onlink_flag_is_kept():
    got = answer(reply("10.1.0.7/32", gateway="10.0.0.2", flags=4), "10.1.0.7/32")
    assert got.verdict == "route" and _rtnl.describe(got.value)["onlink"] is True


def test_less_specific_answer_proves_absence_for_ipv4_only():
    assert answer(reply("10.0.0.0/8", gateway="10.0.0.2"), "10.1.0.0/16") == \
        FibMatch(verdict="absent", why="a less specific route answers: 10.0.0.0/8")
    got = answer(reply("2001:db8::/32", gateway="fd00::2"), "2001:db8:1::/48")
    assert got.verdict == "unknown" and "2001:db8::/32" in got.why


def test_more_specific_answer_proves_nothing():
    got = answer(reply("10.1.0.0/24", gateway="10.0.0.2"), "10.1.0.0/16")
    assert got == FibMatch(verdict="unknown", why="a more specific route answers: 10.1.0.0/24")


@pytest.mark.parametrize("table", [255, 300])
def test_answer_of_another_table_proves_nothing(table):
    got = answer(reply("10.1.0.0/16", table=table, gateway="10.0.0.2"), "10.1.0.0/16")
    assert got == FibMatch(verdict="unknown",
                           why="a route of another table answers: 10.1.0.0/16")
    assert answer(reply("10.1.0.0/16", table=table, gateway="10.0.0.2"), "10.1.0.0/16",
                  table=table).verdict == "route"


def test_local_and_cloned_answers_prove_nothing():
    local = answer(reply("10.0.0.1/32", rtype=2, proto=2), "10.0.0.1/32")
    assert local.verdict == "unknown" and local.why.startswith("a local, broadcast")
    # a kernel older than RTM_F_FIB_MATCH answers with the cached route to the address
    cloned = answer(reply("10.1.0.0/32", flags=RTM_F_CLONED, gateway="10.0.0.2"),
                    "10.1.0.0/16")
    assert cloned.verdict == "unknown" and "Linux < 4.12" in cloned.why


def test_errors():
    assert answer(error(errno.ENETUNREACH), "10.1.0.0/16").verdict == "absent"
    assert answer(error(errno.ENETUNREACH), "2001:db8:1::/48").verdict == "absent"
    assert answer(error(errno.ENETUNREACH), "10.1.0.0/16", table=300) == FibMatch(
        verdict="unknown", why="ENETUNREACH says nothing of table 300 (not main)")
    assert answer(error(errno.EINVAL), "10.1.0.0/16") == FibMatch(
        verdict="unknown", why="EINVAL: a blackhole route answers")
    assert answer(error(errno.ENOMEM), "10.1.0.0/16") == FibMatch(
        verdict="unknown", why="the lookup failed: ENOMEM")


def test_short_or_malformed_reply_is_an_error():
    with pytest.raises(KernelReadError, match="too short"):
        fib_match_answer(b"\0" * 16, 16, _rtnl.pack_key("10.1.0.0/16"), 254)
    bad = bytearray(reply("10.1.0.0/16", gateway="10.0.0.2"))
    bad[0] += 4                                   # nlmsg_len past the bytes
    with pytest.raises(KernelReadError, match="runs past"):
        fib_match_answer(bytes(bad), len(bad), _rtnl.pack_key("10.1.0.0/16"), 254)


@pytest.mark.parametrize("prefix,looked_up", [
    ("10.1.0.0/16", True), ("169.254.0.0/16", True), ("::/0", True), ("fd00::/8", True),
    ("0.0.0.0/0", False), ("0.1.0.0/16", False), ("127.0.0.0/8", False),
    ("224.0.0.0/4", False), ("240.0.0.0/4", False), ("255.255.255.255/32", False),
    ("ff02::/16", False), ("fe80::/64", False), ("::1/128", False),
])
def test_which_prefixes_are_looked_up(prefix, looked_up):
    assert (_lookup_address(_rtnl.pack_key(prefix)) is not None) is looked_up


# ------------------------------------------------------------------------------ what settles


KEY, BIRD = _rtnl.pack_expected("10.1.0.0/16", "unicast", [("10.0.0.2", 3, 1)], metric=100)
STATIC = _rtnl.pack_expected("10.1.0.0/16", "unicast", [("10.0.0.9", 3, 1)], protocol=4)[1]


def test_a_bird_winner_settles():
    assert _proven(KEY, (), FibMatch(verdict="route", value=BIRD)) == {KEY: BIRD}
    assert _proven(KEY, (STATIC,), FibMatch(verdict="route", value=BIRD)) == {KEY: BIRD}


def test_a_winner_of_another_protocol_does_not():
    """It may stand beside BIRD's routes at worse metrics that the lookup does not show."""
    assert _proven(KEY, (), FibMatch(verdict="route", value=STATIC)) is None


def test_absence_settles_only_what_the_dump_saw_absent():
    absent = FibMatch(verdict="absent", why="x")
    assert _proven(KEY, (), absent) == {}
    assert _proven(KEY, (BIRD,), absent) is None      # deleted, or only unusable?


def test_unknown_never_settles():
    assert _proven(KEY, (), FibMatch(verdict="unknown", why="x")) is None
