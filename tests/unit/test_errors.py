"""Bad input: typed errors that name line and byte offset, and keep what parsed before."""
import pytest

from nodestatus import ErrorReply, ParseError, Protocol, Route, TruncatedReplyError, parse
from nodestatus.errors import UnsupportedFormatError
from nodestatus import Parser
import nodestatus

GOOD = (b"1007-10.0.0.0/24        dev eth0 [direct1 06:04:57] * (240)\n"
        b" 10.0.1.0/24        dev eth1 [direct1 06:04:57] * (240)\n")


def test_truncated_raw_reply_is_reported_with_what_parsed():
    with pytest.raises(TruncatedReplyError) as ei:
        parse(GOOD)
    e = ei.value
    assert [r.prefix for r in e.partial] == ["10.0.0.0/24", "10.0.1.0/24"]
    assert "truncated" in str(e) and e.line == 2


def test_cut_inside_a_line():
    with pytest.raises(TruncatedReplyError) as ei:
        parse(GOOD + b"0000")  # no newline: the final line itself was cut… or was it?
    # "0000" without newline could be the whole final line minus its space; BIRD always
    # ends lines with \n, so raw input cut here is truncated
    assert ei.value.offset == len(GOOD)
    assert len(ei.value.partial) == 2


def test_status_without_final_line_is_truncated_in_every_framing():
    for data in (b"1000-BIRD 1.6.8\n1011-Router ID is 192.0.2.1\n",
                 b"0001 BIRD 1.6.8 ready.\n1000-BIRD 1.6.8\n1011-Router ID is 192.0.2.1\n",
                 b"BIRD 1.6.8 ready.\nBIRD 1.6.8\nRouter ID is 192.0.2.1\n"):
        with pytest.raises(TruncatedReplyError) as ei:
            parse(data)
        assert ei.value.partial[-1].router_id == "192.0.2.1"


def test_garbage_line_names_line_and_offset():
    data = GOOD + b"0000 \n\x00\x01garbage\xff\n"
    with pytest.raises(ParseError) as ei:
        parse(data, source="dump.txt")
    e = ei.value
    assert e.line == 4 and e.offset == len(GOOD) + 6
    assert str(e).endswith(f"- at dump.txt:4 (byte {len(GOOD) + 6})")
    assert [r.prefix for r in e.partial] == ["10.0.0.0/24", "10.0.1.0/24"]
    assert not isinstance(e, TruncatedReplyError)


def test_malformed_route_line():
    with pytest.raises(ParseError) as ei:
        parse(GOOD + b" 10.0.2.0/24        dev eth2 [direct1 06:04:57 * (240)\n0000 \n")
    assert ei.value.line == 3 and "unterminated" in str(ei.value)
    assert len(ei.value.partial) == 2
    with pytest.raises(ParseError, match="preference"):
        parse(b"1007-10.0.0.0/8 blackhole [s 1] * (100\n0000 \n")
    with pytest.raises(ParseError, match="destination"):
        parse(b"1007-10.0.0.0/8 teleport [s 1] * (100)\n0000 \n")


@pytest.mark.parametrize("data,code,msg", [
    (b"9001 syntax error, unexpected CF_SYM_UNDEFINED\n", 9001, "syntax error, unexpected CF_SYM_UNDEFINED"),
    (b"9002 nosuchproto is not a protocol\n", 9002, "nosuchproto is not a protocol"),
    (b"8001 Network not in table\n", 8001, "Network not in table"),
    (b"8003 No protocols match\n", 8003, "No protocols match"),
    (b"BIRD 2.0.12 ready.\nNetwork not found\n[exit status 1]\n", 8001, "Network not found"),
    (b"BIRD 2.0.12 ready.\nNo such command. Press `?' for help.\n", None,
     "No such command. Press `?' for help."),
])
def test_error_replies(data, code, msg):
    errs = [r for r in parse(data) if isinstance(r, ErrorReply)]
    assert [(e.code, e.message, e.final) for e in errs] == [(code, msg, True)]


def test_8004_after_partial_data_keeps_the_routes():
    recs = parse(GOOD + b"8004 Stopped due to reconfiguration\n")
    assert [type(r).__name__ for r in recs] == ["Route", "Route", "ErrorReply"]
    assert recs[2].code == 8004


def test_line_overflow_inside_a_reply():
    data = (b"2002-name     proto    table    state  since       info\n"
            b"1002-longdesc Static   master   up     06:08:10    \n"
            b"8000-<line overflow>\n"
            b"1006-  Preference:     200\n"
            b" \n"
            b"0000 \n")
    recs = parse(data)
    assert [type(r).__name__ for r in recs] == ["ErrorReply", "Protocol"]
    assert recs[0] == ErrorReply(code=8000, message="<line overflow>", final=False, line=3)
    assert recs[1].preference == 200
    assert parse(b"8000 <line overflow>\n")[0].final


def test_non_final_error_inside_ok_reply():
    recs = parse(b"8006-p: reload failed\n0000 \n")
    assert recs == [ErrorReply(code=8006, message="p: reload failed", final=False, line=1)]


def test_empty_inputs():
    assert parse(b"") == []
    assert parse(b"\n\n") == []
    assert parse("") == []


def test_unsupported_reply_is_reported_not_dropped():
    data = b"1018-BIRD memory usage\n Routing tables:     66 kB\n0000 \n"
    (u,) = parse(data)
    assert u.code == 1018 and u.lines == 3 and u.first_line == "BIRD memory usage"
    with pytest.raises(UnsupportedFormatError) as ei:
        p = Parser(strict=True)
        p.feed(data)
    assert ei.value.line == 3


def test_feed_after_close():
    p = Parser()
    p.close()
    with pytest.raises(ValueError):
        p.feed(b"x")


def test_overlong_line_is_rejected_without_unbounded_memory():
    p = Parser()
    with pytest.raises(ParseError, match="longer than"):
        for _ in range(40):
            p.feed(b"x" * 65536)


def test_every_error_is_a_nodestatus_error_and_catchable_by_its_public_name():
    """`except nodestatus.BirdError` catches what BIRD did (it used to name a record
    struct, which made the except clause itself raise TypeError); the record is
    ErrorReply; every exception the package raises on purpose lives in errors.py."""
    import inspect

    from nodestatus import errors

    assert issubclass(nodestatus.BirdError, Exception)
    assert issubclass(errors.BirdReplyError, nodestatus.BirdError)
    assert issubclass(errors.BirdTimeoutError, nodestatus.BirdError)
    assert issubclass(nodestatus.ParseError, nodestatus.InputError)
    assert not issubclass(nodestatus.ErrorReply, BaseException)
    for name, obj in vars(errors).items():
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert obj.__module__ == "nodestatus.errors", name
            assert issubclass(obj, errors.NodeStatusError), name
    try:
        raise errors.CommandSyntaxError(9001, "syntax error")
    except nodestatus.BirdError as exc:
        assert exc.code == 9001
