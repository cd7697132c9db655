"""The rtnetlink decoder on hand-built netlink buffers: fields, filters, malformed bytes, and
BIRD's side packed in the same layout (no root needed)."""
from __future__ import annotations

import errno
import socket
import struct

import pytest

from nodestatus import _rtnl
from nodestatus.errors import KernelReadError, NodeStatusError

AF4, AF6 = socket.AF_INET, socket.AF_INET6
RTM_NEWROUTE, RTM_DELROUTE, NLMSG_DONE, NLMSG_ERROR = 24, 25, 3, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_MULTIPATH, RTA_TABLE = 1, 4, 5, 6, 9, 15


# ------------------------------------------------------------------------------ builders


def attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def ip(text: str) -> bytes:
    return socket.inet_pton(AF6 if ":" in text else AF4, text)


def rtnexthop(oif: int, gateway: str = "", hops: int = 0, flags: int = 0) -> bytes:
    attrs = attr(RTA_GATEWAY, ip(gateway)) if gateway else b""
    return struct.pack("=HBBi", 8 + len(attrs), flags, hops, oif) + attrs


def route(dst: str, *, family: int = AF4, rtype: int = 1, proto: int = 12, table: int = 254,
          gateway: str = "", oif: int = 0, metric: int = None, multipath: bytes = b"",
          rta_table: int = None, flags: int = 0, msg_type: int = RTM_NEWROUTE) -> bytes:
    prefix, _, plen = dst.partition("/")
    body = struct.pack("=BBBBBBBBI", family, int(plen), 0, 0, table, proto, 0, rtype, flags)
    if rta_table is not None:
        body += attr(RTA_TABLE, u32(rta_table))
    if int(plen):
        body += attr(RTA_DST, ip(prefix))
    if metric is not None:
        body += attr(RTA_PRIORITY, u32(metric))
    if gateway:
        body += attr(RTA_GATEWAY, ip(gateway))
    if oif:
        body += attr(RTA_OIF, u32(oif))
    if multipath:
        body += attr(RTA_MULTIPATH, multipath)
    return nlmsg(msg_type, body)


def nlmsg(msg_type: int, body: bytes, flags: int = 2) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), msg_type, flags, 1, 0) + body


def done(code: int = 0) -> bytes:
    return nlmsg(NLMSG_DONE, struct.pack("=i", code))


def decode(buf: bytes, family: int = 4, table: int = 254, **kw):
    out = _rtnl.PackedTable()
    n, finished = _rtnl.decode_dump(buf, len(buf), family, table, out, **kw)
    return out, n, finished


def only(out: dict, prefix: str) -> dict:
    key = _rtnl.pack_key(prefix)
    family = key[0]
    return _rtnl.describe(out[key], family)


# ------------------------------------------------------------------------------ the module


def test_module_is_compiled():
    assert _rtnl.__file__.endswith((".so", ".pyd")), _rtnl.__file__


# ------------------------------------------------------------------------------ decoding


def test_ipv4_unicast_with_gateway_and_oif():
    out, n, finished = decode(route("10.1.0.0/24", gateway="192.0.2.1", oif=3, metric=20)
                              + done())
    assert (n, finished) == (1, True)
    assert only(out, "10.1.0.0/24") == {
        "type": "unicast", "type_id": 1, "protocol": "bird", "protocol_id": 12, "metric": 20, "flags": 0,
        "linkdown": False, "onlink": False,
        "nexthops": [{"gateway": "192.0.2.1", "oif": 3, "weight": 1}],
    }


def test_value_layout_is_the_documented_one():
    out, _, _ = decode(route("10.1.0.0/24", gateway="192.0.2.1", oif=3, metric=20))
    (key, value), = out.items()
    assert key == bytes([4, 24, 10, 1, 0, 0])
    assert value[:8] == bytes([1, 12, 0, 0]) + struct.pack("<I", 20)
    assert value[8] == 1
    assert value[9:25] == ip("192.0.2.1") + b"\0" * 12
    assert value[25:29] == struct.pack("<I", 3)
    assert value[29] == 1
    assert len(value) == 30


def test_multipath_weights_and_canonical_order():
    hops = rtnexthop(4, "192.0.2.9", hops=0) + rtnexthop(3, "192.0.2.1", hops=2, flags=0x10)
    out, _, _ = decode(route("10.2.0.0/16", multipath=hops))
    got = only(out, "10.2.0.0/16")
    assert got["nexthops"] == [
        {"gateway": "192.0.2.1", "oif": 3, "weight": 3},
        {"gateway": "192.0.2.9", "oif": 4, "weight": 1},
    ]
    assert got["linkdown"] and not got["onlink"]
    # the kernel's order does not matter: the other order gives the same bytes
    swapped = rtnexthop(3, "192.0.2.1", hops=2) + rtnexthop(4, "192.0.2.9", hops=0)
    out2, _, _ = decode(route("10.2.0.0/16", multipath=swapped))
    key = _rtnl.pack_key("10.2.0.0/16")
    assert _rtnl.in_sync(out[key], out2[key])


@pytest.mark.parametrize("rtype,name", [(6, "blackhole"), (7, "unreachable"), (8, "prohibit")])
def test_blackhole_types_have_no_next_hops(rtype, name):
    # IPv6 ones carry oif 1 (lo): ignored
    out, _, _ = decode(route("fd00:1::/64", family=AF6, rtype=rtype, oif=1, metric=1024),
                       family=6)
    got = only(out, "fd00:1::/64")
    assert (got["type"], got["nexthops"], got["metric"]) == (name, [], 1024)


def test_ipv6_route_and_family_filter():
    buf = (route("2001:db8:1::/48", family=AF6, gateway="fe80::1", oif=2, metric=1024)
           + route("10.0.0.0/8", gateway="192.0.2.1", oif=2))
    out6, n6, _ = decode(buf, family=6)
    out4, n4, _ = decode(buf, family=4)
    assert (n6, n4) == (1, 1)
    assert only(out6, "2001:db8:1::/48")["nexthops"] == [
        {"gateway": "fe80::1", "oif": 2, "weight": 1}]
    assert list(out4) == [_rtnl.pack_key("10.0.0.0/8")]


def test_ipv6_multipath():
    hops = rtnexthop(2, "fe80::2") + rtnexthop(3, "fe80::1")
    out, _, _ = decode(route("fd00:9::/64", family=AF6, multipath=hops, metric=1024), family=6)
    assert [h["gateway"] for h in only(out, "fd00:9::/64")["nexthops"]] == ["fe80::1", "fe80::2"]


def test_table_above_255_comes_from_rta_table():
    buf = route("10.3.0.0/16", oif=2, table=252, rta_table=300) + route("10.4.0.0/16", oif=2)
    out300, _, _ = decode(buf, table=300)
    out254, _, _ = decode(buf, table=254)
    out_all, _, _ = decode(buf, table=0)
    assert list(out300) == [_rtnl.pack_key("10.3.0.0/16")]
    assert list(out254) == [_rtnl.pack_key("10.4.0.0/16")]
    assert len(out_all) == 2


def test_cloned_and_local_routes_are_skipped():
    buf = (route("10.5.0.1/32", oif=2, flags=0x200)
           + route("10.5.0.2/32", oif=2, rtype=2)
           + route("10.5.0.0/24", oif=2))
    out, n, _ = decode(buf)
    assert n == 1 and list(out) == [_rtnl.pack_key("10.5.0.0/24")]
    out, n, _ = decode(buf, all_types=True)
    assert n == 2     # local kept on request, cloned never


def test_default_route_has_no_rta_dst():
    out, _, _ = decode(route("0.0.0.0/0", gateway="192.0.2.1", oif=2))
    assert _rtnl.pack_key("0.0.0.0/0") in out


def test_same_prefix_twice_gives_a_tuple_and_repeats_collapse():
    a = route("10.6.0.0/16", gateway="192.0.2.1", oif=2, metric=10, proto=3)
    b = route("10.6.0.0/16", gateway="192.0.2.2", oif=2, metric=20)
    out, n, _ = decode(a + b + a)
    value = out[_rtnl.pack_key("10.6.0.0/16")]
    assert isinstance(value, tuple) and len(value) == 2 and n == 2
    assert [_rtnl.describe(v)["metric"] for v in _rtnl.values_of(value)] == [10, 20]


def test_done_stops_and_later_bytes_are_ignored():
    out, n, finished = decode(route("10.7.0.0/16", oif=2) + done() + route("10.8.0.0/16", oif=2))
    assert (n, finished, len(out)) == (1, True, 1)


def test_not_done_without_nlmsg_done():
    _, _, finished = decode(route("10.7.0.0/16", oif=2))
    assert finished is False


def test_decode_accepts_a_reused_buffer_and_nbytes():
    payload = route("10.7.0.0/16", oif=2)
    buf = bytearray(65536)
    buf[:len(payload)] = payload
    out = _rtnl.PackedTable()
    assert _rtnl.decode_dump(memoryview(buf), len(payload), 4, 254, out) == (1, False)
    with pytest.raises(ValueError):
        _rtnl.decode_dump(payload, len(payload) + 1, 4, 254, out)


def test_nlmsg_error_raises_with_errno():
    buf = nlmsg(NLMSG_ERROR, struct.pack("=i", -errno.EPERM) + b"\0" * 16)
    with pytest.raises(KernelReadError) as info:
        decode(buf)
    assert info.value.errno == errno.EPERM
    assert "error 1" in str(info.value) and "(byte 0)" in str(info.value)
    assert isinstance(info.value, NodeStatusError)


def test_nlmsg_error_zero_is_an_ack():
    out, n, _ = decode(nlmsg(NLMSG_ERROR, struct.pack("=i", 0) + b"\0" * 16))
    assert (out, n) == ({}, 0)


def test_done_carrying_an_error_raises():
    with pytest.raises(KernelReadError) as info:
        decode(done(-errno.EINTR))
    assert info.value.errno == errno.EINTR


def test_monitor_keys_include_deletions():
    buf = route("10.9.0.0/16", oif=2) + route("10.10.0.0/16", oif=2, msg_type=RTM_DELROUTE)
    keys: set = set()
    assert _rtnl.decode_keys(buf, len(buf), 4, 254, keys) == (2, False)
    assert keys == {_rtnl.pack_key("10.9.0.0/16"), _rtnl.pack_key("10.10.0.0/16")}


# ------------------------------------------------------------------------------ malformed


GOOD = route("10.1.0.0/24", gateway="192.0.2.1", oif=3)


def test_truncated_header():
    second = GOOD + GOOD[:10]
    with pytest.raises(KernelReadError) as info:
        decode(second)
    assert info.value.offset == len(GOOD)
    assert "truncated netlink header" in str(info.value)


def test_nlmsg_len_beyond_the_buffer():
    bad = struct.pack("=I", len(GOOD) + 100) + GOOD[4:]
    with pytest.raises(KernelReadError) as info:
        decode(bad)
    assert info.value.offset == 0 and "runs past the buffer" in str(info.value)


def test_nlmsg_len_below_header():
    with pytest.raises(KernelReadError, match="smaller than the header"):
        decode(struct.pack("=IHHII", 8, RTM_NEWROUTE, 0, 0, 0))


def test_truncated_message_cut_by_recv():
    with pytest.raises(KernelReadError):
        decode(GOOD[:-4])


def _with_bad_attr(raw_attr: bytes) -> bytes:
    body = struct.pack("=BBBBBBBBI", AF4, 24, 0, 0, 254, 12, 0, 1, 0) + raw_attr
    return nlmsg(RTM_NEWROUTE, body)


def test_attribute_length_below_four():
    msg = _with_bad_attr(struct.pack("=HH", 2, RTA_OIF) + b"\0" * 4)
    with pytest.raises(KernelReadError) as info:
        decode(GOOD + msg)
    assert info.value.offset == len(GOOD) + 28      # nlmsghdr 16 + rtmsg 12
    assert info.value.message_offset == len(GOOD)
    assert "attribute length 2 < 4" in str(info.value)


def test_attribute_past_the_message_end():
    msg = _with_bad_attr(struct.pack("=HH", 40, RTA_DST) + ip("10.1.0.0"))
    with pytest.raises(KernelReadError, match="runs past the message end") as info:
        decode(msg)
    assert info.value.offset == 28


def test_attribute_payload_too_short():
    with pytest.raises(KernelReadError, match="RTA_DST payload of 2 bytes"):
        decode(_with_bad_attr(attr(RTA_DST, b"\x0a\x01")))


def test_truncated_rtnexthop():
    hops = rtnexthop(3, "192.0.2.1") + b"\x10\x00\x00\x00"   # 4 stray bytes: not a rtnexthop
    with pytest.raises(KernelReadError, match="truncated rtnexthop"):
        decode(route("10.2.0.0/16", multipath=hops))


def test_rtnexthop_length_beyond_multipath():
    bad = struct.pack("=HBBi", 64, 0, 0, 3)
    with pytest.raises(KernelReadError, match="rtnexthop length 64"):
        decode(route("10.2.0.0/16", multipath=bad))


def test_trailing_garbage_after_a_good_message():
    with pytest.raises(KernelReadError):
        decode(GOOD + b"\x01\x02\x03")


@pytest.mark.parametrize("cut", range(1, 16))
def test_every_cut_of_the_header_raises_not_crashes(cut):
    with pytest.raises(KernelReadError):
        decode(GOOD[:cut])


def test_random_bytes_never_crash():
    import random

    rng = random.Random(4)
    for _ in range(2000):
        raw = bytearray(GOOD + route("fd00::/64", family=AF6, multipath=rtnexthop(2, "fe80::1")))
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        try:
            decode(bytes(raw), family=0, table=0)
        except KernelReadError:
            pass


def test_error_pickles_with_its_fields():
    import pickle

    exc = KernelReadError("bad", offset=7, message_offset=4, errno=1).with_where("netns x")
    back = pickle.loads(pickle.dumps(exc))
    assert (back.offset, back.message_offset, back.errno, str(back)) == (
        7, 4, 1, "bad - at netns x (byte 7)")


# ------------------------------------------------------------------------------ keys


@pytest.mark.parametrize("text,normal", [
    ("10.0.0.0/24", "10.0.0.0/24"),
    ("10.0.0.77/24", "10.0.0.0/24"),
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("192.0.2.1", "192.0.2.1/32"),
    ("10.1.2.3/31", "10.1.2.2/31"),
    ("fd00::1/64", "fd00::/64"),
    ("2001:db8::/32", "2001:db8::/32"),
    ("::/0", "::/0"),
    ("fe80::1", "fe80::1/128"),
    ("2001:db8:ffff::/33", "2001:db8:8000::/33"),
])
def test_pack_unpack_round_trip(text, normal):
    key = _rtnl.pack_key(text)
    assert _rtnl.unpack_key(key) == normal
    assert _rtnl.pack_key(normal) == key
    assert len(key) == (6 if "." in text else 18)


@pytest.mark.parametrize("bad", ["", "10.0.0.0/33", "fd00::/129", "10.0.0/24", "x/1",
                                 "10.0.0.0/ab"])
def test_pack_key_rejects(bad):
    with pytest.raises(ValueError):
        _rtnl.pack_key(bad)


def test_unpack_key_rejects_non_keys():
    with pytest.raises(ValueError):
        _rtnl.unpack_key(b"\x04\x21\0\0\0\0")


# ------------------------------------------------------------------------------ BIRD's side


def test_pack_expected_equals_the_decoded_kernel_route():
    hops = rtnexthop(4, "192.0.2.9", hops=0) + rtnexthop(3, "192.0.2.1", hops=2)
    out, _, _ = decode(route("10.2.0.0/16", multipath=hops, metric=1024, proto=12))
    key, value = _rtnl.pack_expected("10.2.0.0/16", "unicast",
                                     [("192.0.2.9", 4, 1), ("192.0.2.1", 3, 3)])
    assert key in out
    assert value[8:] == out[key][8:]
    assert value[:8] == bytes([1, 12, 0, 0, 0, 0, 0, 0])
    assert _rtnl.in_sync(value, out[key])


def test_pack_expected_blackhole_ignores_next_hops_and_lo():
    out, _, _ = decode(route("fd00:1::/64", family=AF6, rtype=6, oif=1, metric=1024), family=6)
    key, value = _rtnl.pack_expected("fd00:1::/64", 6, [(None, 1, 1)])
    assert _rtnl.in_sync(value, out[key])


def test_pack_expected_scoped_link_local_gateway():
    _, value = _rtnl.pack_expected("fd00::/64", 1, [("fe80::1%eth0", 2, 1)])
    assert _rtnl.describe(value, 6)["nexthops"] == [{"gateway": "fe80::1", "oif": 2, "weight": 1}]


@pytest.mark.parametrize("hops", [[("192.0.2.1", 2, 0)], [("192.0.2.1", -1, 1)],
                                  [("nonsense", 2, 1)]])
def test_pack_expected_rejects(hops):
    with pytest.raises(ValueError):
        _rtnl.pack_expected("10.0.0.0/8", 1, hops)


def test_weight_256_survives():
    _, value = _rtnl.pack_expected("10.0.0.0/8", 1, [("192.0.2.1", 2, 256), ("192.0.2.2", 2, 1)])
    assert [h["weight"] for h in _rtnl.describe(value)["nexthops"]] == [256, 1]


def test_compare_classifies():
    def exp(prefix, *hops, rtype=1):
        return _rtnl.pack_expected(prefix, rtype, list(hops))

    expected = _rtnl.PackedTable(dict([
        exp("10.1.0.0/24", ("192.0.2.1", 2, 1)),          # agrees
        exp("10.2.0.0/24", ("192.0.2.1", 2, 1)),          # missing: not in kernel
        exp("10.3.0.0/24", ("192.0.2.1", 2, 1)),          # missing: only a static route
        exp("10.4.0.0/24", ("192.0.2.1", 2, 1)),          # mismatched gateway
        exp("10.5.0.0/24", rtype=6),                      # mismatched type
        exp("10.6.0.0/24", ("192.0.2.1", 2, 1)),          # agrees among several values
    ]))
    kernel_buf = (
        route("10.1.0.0/24", gateway="192.0.2.1", oif=2, flags=0x10)   # linkdown: not compared
        + route("10.3.0.0/24", gateway="192.0.2.1", oif=2, proto=4)
        + route("10.4.0.0/24", gateway="192.0.2.7", oif=2)
        + route("10.5.0.0/24", rtype=7)
        + route("10.6.0.0/24", gateway="192.0.2.1", oif=2, proto=4, metric=5)
        + route("10.6.0.0/24", gateway="192.0.2.1", oif=2, metric=32)
        + route("10.9.0.0/24", gateway="192.0.2.1", oif=2)             # stale proto bird
        + route("10.8.0.0/24", gateway="192.0.2.1", oif=2, proto=3)    # not ours: ignored
    )
    kernel, _, _ = decode(kernel_buf)
    agree, missing, mismatched, extra = _rtnl.compare(expected, kernel)
    names = lambda keys: sorted(_rtnl.unpack_key(k) for k in keys)  # noqa: E731
    assert agree == 2
    assert names(missing) == ["10.2.0.0/24", "10.3.0.0/24"]
    assert names(mismatched) == ["10.4.0.0/24", "10.5.0.0/24"]
    assert names(extra) == ["10.9.0.0/24"]


def test_compare_takes_packed_tables():
    key, value = _rtnl.pack_expected("10.0.0.0/8", 6)
    with pytest.raises(TypeError):
        _rtnl.compare({key: value}, _rtnl.PackedTable())
    with pytest.raises(TypeError):
        _rtnl.PackedTable({key: "x"})


def test_packed_table_reads_like_a_dict():
    a = _rtnl.pack_expected("10.0.0.0/8", 6)
    b1 = _rtnl.pack_expected("10.1.0.0/16", "unicast", [("192.0.2.1", 2, 1)])
    b2 = _rtnl.pack_expected("10.1.0.0/16", "unicast", [("192.0.2.1", 2, 1)], metric=7)
    t = _rtnl.PackedTable()
    assert [t.add(*a), t.add(*b1), t.add(*b2), t.add(*b1)] == [1, 1, 1, 0]   # repeat dropped
    assert len(t) == 2 and t.n_values == 3
    assert t[a[0]] == a[1] and t.get(b1[0]) == (b1[1], b2[1])
    assert b1[0] in t and b"nope" not in t and t.get(b"nope") is None
    assert t.keys() == [a[0], b1[0]] and t == {a[0]: a[1], b1[0]: (b1[1], b2[1])}
    assert _rtnl.PackedTable(dict(t.items())) == t
    with pytest.raises(KeyError):
        t[b"\x04\x08\x0b\x00\x00\x00"]


def test_packed_records_replace_and_are_bounds_checked():
    def record(key, value):
        return bytes([len(key)]) + key + len(value).to_bytes(2, "little") + value

    a = _rtnl.pack_expected("10.0.0.0/8", 6)
    b = _rtnl.pack_expected("10.0.0.0/8", "unicast", [("192.0.2.1", 2, 1)])
    c = _rtnl.pack_expected("2001:db8::/32", 6)
    t = _rtnl.PackedTable.from_records(record(*a) + record(*c) + record(*b))
    assert t == {a[0]: b[1], c[0]: c[1]}                      # a key seen again: replaced
    whole = record(*a) + record(*c)
    for cut in range(1, len(whole)):
        if cut == len(record(*a)):
            continue
        with pytest.raises(ValueError, match="cut short"):
            _rtnl.PackedTable.from_records(whole[:cut])


def test_describe_rejects_garbage():
    with pytest.raises(ValueError):
        _rtnl.describe(b"\x01\x02")


# ------------------------------------------------------------------------------ recv_dump
# A SOCK_SEQPACKET pair keeps datagram boundaries as a netlink socket does, so the receive
# loop meets the same recvs: several datagrams, NLMSG_DONE in the last one.


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield a, b
    a.close()
    b.close()


def test_recv_dump_reads_datagrams_to_nlmsg_done(pair):
    reader, writer = pair
    writer.send(route("10.7.0.0/16", oif=2) + route("10.8.0.0/16", oif=2))
    writer.send(route("10.9.0.0/16", oif=3))
    writer.send(done())
    writer.send(route("10.10.0.0/16", oif=3))           # the next dump's: left unread
    out = _rtnl.PackedTable()
    n, nbytes, finished = _rtnl.recv_dump(reader.fileno(), bytearray(65536), 4, 254, out)
    assert (n, finished, len(out)) == (3, True, 3)
    assert nbytes == 2 * len(route("10.7.0.0/16", oif=2)) + len(route("10.9.0.0/16", oif=3)) \
        + len(done())
    assert only(out, "10.9.0.0/16")["nexthops"][0]["oif"] == 3
    assert reader.recv(65536) == route("10.10.0.0/16", oif=3)


def test_recv_dump_closed_before_done_is_not_finished(pair):
    reader, writer = pair
    writer.send(route("10.7.0.0/16", oif=2))
    writer.close()
    out = _rtnl.PackedTable()
    assert _rtnl.recv_dump(reader.fileno(), bytearray(4096), 4, 254, out)[::2] == (1, False)
    assert len(out) == 1                               # what came before is kept


def test_recv_dump_times_out_on_a_silent_socket(pair):
    reader, writer = pair
    reader.settimeout(0.05)                            # non-blocking fd, as Python sets it
    writer.send(route("10.7.0.0/16", oif=2))
    out = _rtnl.PackedTable()
    with pytest.raises(TimeoutError):
        _rtnl.recv_dump(reader.fileno(), bytearray(4096), 4, 254, out, timeout_ms=50)
    assert len(out) == 1


def test_recv_dump_errors_are_typed(pair):
    reader, writer = pair
    writer.send(nlmsg(NLMSG_ERROR, struct.pack("=i", -errno.ENOENT) + b"\0" * 16))
    with pytest.raises(KernelReadError) as info:
        _rtnl.recv_dump(reader.fileno(), bytearray(4096), 4, 254, _rtnl.PackedTable())
    assert info.value.errno == errno.ENOENT
    with pytest.raises(OSError) as oserr:                # not a socket at all
        _rtnl.recv_dump(-1, bytearray(4096), 4, 254, _rtnl.PackedTable())
    assert oserr.value.errno == errno.EBADF
    with pytest.raises(ValueError, match="too small"):
        _rtnl.recv_dump(reader.fileno(), bytearray(8), 4, 254, _rtnl.PackedTable())
    with pytest.raises(BufferError):
        _rtnl.recv_dump(reader.fileno(), b"\0" * 4096, 4, 254, _rtnl.PackedTable())


def test_recv_dump_lets_a_signal_handler_interrupt_it(pair):
    """Ctrl-C reaches a dump that waits without the GIL: the handler runs on EINTR and its
    exception ends the dump (a writer thread ends it after 5 s should that fail)."""
    import signal
    import threading

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    reader, writer = pair
    fallback = threading.Timer(5.0, lambda: writer.send(done()))
    old = signal.signal(signal.SIGALRM, handler)
    fallback.start()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Interrupted):
            _rtnl.recv_dump(reader.fileno(), bytearray(4096), 4, 254, _rtnl.PackedTable())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        fallback.cancel()
