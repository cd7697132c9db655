"""Property tests: no input crashes or hangs the parser; only ParseError escapes."""
from hypothesis import given, settings, strategies as st

from nodestatus import ParseError, Parser, parse

SEED = (
    b"0001 BIRD 1.6.8 ready.\n"
    b"1007-10.11.0.0/16       multipath [static1 06:05:05] * (200)\n"
    b" \tvia 10.0.0.2 on eth0 weight 2\n"
    b"1008-\tType: static unicast univ\n"
    b"1012-\tBGP.as_path: 65001 { 1 2 } ...\n"
    b" \tBGP.community: (65000,1)\n \t\t(65000,3)\n"
    b"1007-                   via 10.0.0.3 on eth0 [static-alt.v4 06:04:57] (50)\n"
    b"0000 \n"
    b"2002-name     proto    table    state  since       info\n"
    b"1002-Mesh_1    BGP      master   up     06:22:13    Established   \n"
    b"1006-  BGP state:          Established\n     Neighbor AS:      64512\n \n0000 \n"
    b"1000-BIRD 1.6.8\n1011-Router ID is 192.0.2.1\n0013 Daemon is up and running\n"
)


def _run(data: bytes, chunk: int) -> None:
    p = Parser()
    try:
        for i in range(0, len(data), chunk):
            p.feed(data[i:i + chunk])
        p.close()
    except ParseError as exc:
        assert exc.line >= 0 and exc.offset >= 0
        assert isinstance(exc.partial, list)


@settings(max_examples=400, deadline=2000)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_random_bytes(data, chunk):
    _run(data, chunk)


@settings(max_examples=400, deadline=2000)
@given(st.data())
def test_mutated_valid_input(d):
    data = bytearray(SEED)
    for _ in range(d.draw(st.integers(1, 8))):
        i = d.draw(st.integers(0, len(data) - 1))
        op = d.draw(st.sampled_from(["flip", "cut", "dup", "ins"]))
        if op == "flip":
            data[i] = d.draw(st.integers(0, 255))
        elif op == "cut":
            del data[i:i + d.draw(st.integers(1, 40))]
        elif op == "dup":
            data[i:i] = data[i:i + d.draw(st.integers(1, 40))]
        else:
            data[i:i] = d.draw(st.sampled_from([b"\n", b" ", b"\t", b"[", b"]", b"(", b"0000 ",
                                                b"1007-", b"\t\t", b"/", b"..."]))
        if not data:
            break
    _run(bytes(data), d.draw(st.integers(1, 97)))


@settings(max_examples=200, deadline=2000)
@given(st.text(max_size=500))
def test_text_input(text):
    try:
        parse(text)
    except ParseError:
        pass
