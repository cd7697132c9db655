"""Streaming: byte-at-a-time feeds, files, gzip and sockets give the same records."""
import gzip
import socket
import threading

from nodestatus import Parser, Route, iter_records, parse

DUMP = (
    b"0001 BIRD 1.6.8 ready.\n"
    b"1007-10.11.0.0/16       multipath [static1 06:05:05] * (200)\n"
    b" \tvia 10.0.0.2 on eth0 weight 2\n"
    b" \tvia 10.0.1.2 on cali0123456789a weight 1\n"
    b"1008-\tType: static unicast univ\n"
    b"1012-\tBGP.community: (65000,1) (65000,2)\n"
    b" \t\t(65000,3)\n"
    b"1007-                   via 10.0.0.3 on eth0 [static-alt.v4 06:04:57] (50)\n"
    b"0000 \n"
    b"1000-BIRD 1.6.8\n1011-Router ID is 192.0.2.1\n0013 Daemon is up and running\n"
)


def test_byte_at_a_time_equals_whole():
    whole = parse(DUMP)
    p = Parser()
    out = []
    for i in range(len(DUMP)):
        out += p.feed(DUMP[i:i + 1])
    out += p.close()
    assert out == whole
    assert [type(r).__name__ for r in whole] == ["Banner", "Route", "Route", "BirdStatus"]
    assert whole[1].bgp.communities == ((65000, 1), (65000, 2), (65000, 3))


def test_records_are_yielded_before_the_input_ends():
    p = Parser()
    first = p.feed(DUMP[: DUMP.index(b"1007-  ")])
    assert [type(r).__name__ for r in first] == ["Banner"]  # the route waits for its attributes
    second = p.feed(DUMP[DUMP.index(b"1007-  "):DUMP.index(b"0000")])
    assert [r.protocol for r in second] == ["static1"]


def test_iter_records_from_plain_and_gzip_files(tmp_path):
    plain = tmp_path / "dump.txt"
    plain.write_bytes(DUMP)
    gz = tmp_path / "dump.gz"  # gzip sniffed by magic, not by name
    gz.write_bytes(gzip.compress(DUMP))
    expect = parse(DUMP)
    assert list(iter_records(plain, chunk_size=7)) == expect
    assert list(iter_records(str(gz), chunk_size=5)) == expect
    with open(plain, "rb") as f:
        assert list(iter_records(f)) == expect


def test_iter_records_truncated_file_names_the_file(tmp_path):
    import pytest
    from nodestatus import TruncatedReplyError
    cut = tmp_path / "cut.txt"
    cut.write_bytes(DUMP[: DUMP.index(b"0000")])
    got = []
    with pytest.raises(TruncatedReplyError) as ei:
        for r in iter_records(cut):
            got.append(r)
    assert str(cut) in str(ei.value)
    assert len(got) + len(ei.value.partial) == 3  # banner + both routes, nothing lost


def test_iter_records_from_a_socket():
    a, b = socket.socketpair()

    def serve():
        for i in range(0, len(DUMP), 13):
            a.sendall(DUMP[i:i + 13])
        a.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        assert list(iter_records(b)) == parse(DUMP)
    finally:
        t.join()
        b.close()


def test_compiled_core_is_loaded():
    import nodestatus._birdparse as core
    assert core.__file__.endswith((".so", ".pyd"))
