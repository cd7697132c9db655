"""Reply framing: raw socket bytes, birdc -v and plain birdc, detected and forced.

The same BIRD answer in every framing must give the same records; replies of a
pipelined session are split; BIRD 1.6's carried-over code and async lines are handled.
"""
import pytest

import nodestatus
from nodestatus import Banner, ErrorReply, BirdStatus, Parser, Route, parse, parse_replies
from nodestatus.structs import ReplyEnd

STATUS_RAW = (
    b"1000-BIRD 1.6.8\n"
    b"1011-Router ID is 192.0.2.1\n"
    b" Current server time is 2026-11-27 06:05:58\n"
    b" Last reboot on 2026-11-27 06:04:57\n"
    b" Last reconfiguration on 2026-11-27 06:05:05\n"
    b"0013 Daemon is up and running\n"
)
STATUS_V = (
    b"0001 BIRD 1.6.8 ready.\n"
    b"1000-BIRD 1.6.8\n"
    b"1011-Router ID is 192.0.2.1\n"
    b"     Current server time is 2026-11-27 06:05:58\n"
    b"     Last reboot on 2026-11-27 06:04:57\n"
    b"     Last reconfiguration on 2026-11-27 06:05:05\n"
    b"0013 Daemon is up and running\n"
)
STATUS_PLAIN = (
    b"BIRD 1.6.8 ready.\n"
    b"BIRD 1.6.8\n"
    b"Router ID is 192.0.2.1\n"
    b"Current server time is 2026-11-27 06:05:58\n"
    b"Last reboot on 2026-11-27 06:04:57\n"
    b"Last reconfiguration on 2026-11-27 06:05:05\n"
    b"Daemon is up and running\n"
)


def _status(records):
    (st,) = [r for r in records if isinstance(r, BirdStatus)]
    return st


@pytest.mark.parametrize("data,framing", [(STATUS_RAW, "raw"), (STATUS_V, "birdc-v"),
                                          (STATUS_PLAIN, "birdc")])
def test_same_status_in_every_framing(data, framing):
    st = _status(parse(data))
    assert st.version == "1.6.8"
    assert st.router_id == "192.0.2.1"
    assert st.server_time == "2026-11-27 06:05:58"
    assert st.last_reboot == "2026-11-27 06:04:57"
    assert st.last_reconfiguration == "2026-11-27 06:05:05"
    assert st.state == "up"
    # forcing the framing gives the same answer as detecting it
    assert _status(parse(data, framing=framing)) == st
    p = Parser()
    p.feed(data)
    assert p.framing == framing


def test_banner_record():
    recs = parse(STATUS_V)
    assert recs[0] == Banner(version="1.6.8")
    assert parse(b"0001 BIRD v0.3.3+birdv1.6.8 ready.\n") == [Banner(version="v0.3.3+birdv1.6.8")]


ROUTES_RAW = (
    b"1007-10.0.0.0/24        dev eth0 [direct1 06:04:57] * (240)\n"
    b" 10.10.0.0/16       via 10.0.0.2 on eth0 [static1 06:05:05] * (200)\n"
    b"                    via 10.0.1.2 on cali0123456789a [static-alt.v4 06:04:57] (50)\n"
    b"0000 \n"
)
ROUTES_V = (
    b"0001 BIRD 1.6.8 ready.\n"
    b"1007-10.0.0.0/24        dev eth0 [direct1 06:04:57] * (240)\n"
    b"     10.10.0.0/16       via 10.0.0.2 on eth0 [static1 06:05:05] * (200)\n"
    b"                        via 10.0.1.2 on cali0123456789a [static-alt.v4 06:04:57] (50)\n"
)


def test_route_framings_agree_and_v_has_no_final_line():
    raw = [r for r in parse(ROUTES_RAW) if isinstance(r, Route)]
    v = [r for r in parse(ROUTES_V) if isinstance(r, Route)]
    assert raw == v
    assert [r.prefix for r in raw] == ["10.0.0.0/24", "10.10.0.0/16", "10.10.0.0/16"]
    assert raw[2].protocol == "static-alt.v4" and not raw[2].primary


def test_pipelined_replies_are_split():
    data = ROUTES_RAW + STATUS_RAW + b"0014 3 of 3 routes for 2 networks\n" + b"9001 syntax error\n"
    replies = parse_replies(data)
    assert len(replies) == 4
    assert [type(r).__name__ for r in replies[0]] == ["Route"] * 3
    assert isinstance(replies[1][0], BirdStatus)
    assert replies[2][0].total == 3 and replies[2][0].networks == 2
    assert replies[3] == [ErrorReply(code=9001, message="syntax error", final=True, line=12)]


def test_reply_markers_number_the_replies():
    p = Parser(reply_markers=True)
    recs = p.feed(ROUTES_RAW + STATUS_RAW) + p.close()
    ends = [r for r in recs if isinstance(r, ReplyEnd)]
    assert [(e.index, e.kind, e.code, e.complete) for e in ends] == [
        (0, "routes", 0, True), (1, "status", 13, True)]
    assert p.replies == 2


def test_bird16_carried_over_code_starts_a_reply():
    # BIRD 1.6 keeps the previous final code: the next reply may start code-less
    data = b"1010 static1 \tprotocol\n ips_site\tconstant\n master  \trouting table\n0000 \n"
    recs = parse(data)
    assert [type(r).__name__ for r in recs] == ["Unsupported", "Unsupported"]
    assert recs[1].code == 1010 and recs[1].lines == 3


def test_async_lines_are_not_part_of_a_reply():
    data = (b"1007-10.0.0.0/24        dev eth0 [direct1 06:04:57] * (240)\n"
            b"+Reconfigured\n"
            b" 10.0.1.0/24        dev eth1 [direct1 06:04:57] * (240)\n"
            b"0000 \n")
    assert [r.prefix for r in parse(data)] == ["10.0.0.0/24", "10.0.1.0/24"]


def test_transcript_command_lines_split_and_hint():
    data = (b"0001 BIRD 1.6.8 ready.\n>> show route count\n0014 1 of 1 routes for 1 networks\n"
            b">> show status\n" + STATUS_RAW)
    replies = parse_replies(data)
    assert [type(r[0]).__name__ for r in replies] == ["Banner", "RouteCount", "BirdStatus"]


def test_plain_birdc_interactive_prompts():
    data = (b"BIRD 1.6.8 ready.\nbird> show route\n"
            b"10.0.0.0/24        dev eth0 [direct1 06:04:57] * (240)\n"
            b"bird> show route count\n1 of 1 routes for 1 networks\nbird> \n")
    recs = parse(data)
    assert [type(r).__name__ for r in recs] == ["Banner", "Route", "RouteCount"]


def test_crlf_and_no_final_newline_in_plain_text():
    data = b"BIRD 2.0.12 ready.\r\n10.0.0.0/24          unicast [direct1 06:05:21.598] * (240)\r\n\tdev eth0"
    (b, r) = parse(data)
    assert r.nexthops[0].interface == "eth0"


def test_bad_framing_name():
    with pytest.raises(ValueError):
        Parser(framing="xml")
