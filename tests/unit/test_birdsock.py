"""The control-socket client against scripted servers on a UNIX socket in tmp_path:
timeouts, a daemon that dies mid-reply, pipelining and the 1.6 command guard."""
import os
import socket
import threading
import time

import pytest

from nodestatus.birdsock import BirdClient, find_socket
from nodestatus.errors import (
    BirdClosedError,
    BirdReplyError,
    BirdTimeoutError,
    BirdUnreachableError,
    CommandSyntaxError,
    NetworkNotFoundError,
)
from nodestatus.structs import ErrorReply, BirdStatus, Route, RouteCount

BANNER16 = b"0001 BIRD 1.6.8 ready.\n"
STATUS = (b"1000-BIRD 1.6.8\n1011-Router ID is 192.0.2.1\n Current server time is x\n"
          b"0013 Daemon is up and running\n")
ROUTES = (b"1007-10.0.0.0/24        dev eth0 [direct1 06:04:57] * (240)\n"
          b" 10.0.1.0/24        dev eth1 [direct1 06:04:57] * (240)\n0000 \n")


class FakeBird:
    """A UNIX-socket server that plays a script: banner, then per received command line
    the scripted answer (bytes, or a callable given the connection)."""

    def __init__(self, path, answers, banner=BANNER16):
        self.path = str(path)
        self.answers = dict(answers)
        self.banner = banner
        self.received = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        with conn:
            if self.banner is None:
                time.sleep(5)
                return
            conn.sendall(self.banner)
            buf = b""
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    cmd = line.decode()
                    self.received.append(cmd)
                    ans = self.answers.get(cmd, b"9001 syntax error\n")
                    if callable(ans):
                        if ans(conn) is False:
                            return
                    else:
                        conn.sendall(ans)

    def close(self):
        self.srv.close()
        self.thread.join(timeout=6)


@pytest.fixture
def fake(tmp_path):
    servers = []

    def make(answers, **kw):
        s = FakeBird(tmp_path / f"bird{len(servers)}.ctl", answers, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_query_and_pipeline(fake):
    srv = fake({"show status": STATUS, "show route": ROUTES,
                "show route count": b"0014 2 of 2 routes for 2 networks\n"})
    with BirdClient(srv.path) as bird:
        assert bird.version == "1.6.8" and not bird.is_bird2
        (st,) = bird.query("show status")
        assert isinstance(st, BirdStatus) and st.router_id == "192.0.2.1"
        replies = bird.pipeline(["show route", "show status", "show route count"])
    assert [type(r).__name__ for r in replies[0]] == ["Route", "Route"]
    assert isinstance(replies[1][0], BirdStatus)
    assert replies[2] == [RouteCount(shown=2, total=2, networks=2)]
    assert srv.received == ["show status", "show route", "show status", "show route count"]


def test_error_reply_is_typed_and_connection_stays_usable(fake):
    srv = fake({"show route for 10.99.0.1": b"8001 Network not in table\n", "show status": STATUS})
    with BirdClient(srv.path) as bird:
        with pytest.raises(NetworkNotFoundError) as ei:
            bird.query("show route for 10.99.0.1")
        assert ei.value.code == 8001 and srv.path in str(ei.value)
        assert isinstance(bird.query("show status")[0], BirdStatus)
        with pytest.raises(CommandSyntaxError):
            bird.query("show nonsense")
        assert bird.query("show nonsense", check=False) == [
            ErrorReply(code=9001, message="syntax error", final=True, line=8)]


def test_unknown_error_code_gets_the_generic_class(fake):
    srv = fake({"x": b"8999 something new\n"})
    with BirdClient(srv.path) as bird:
        with pytest.raises(BirdReplyError) as ei:
            bird.query("x")
    assert type(ei.value) is BirdReplyError and ei.value.code == 8999


def test_missing_socket_names_the_path(tmp_path):
    path = str(tmp_path / "nope.ctl")
    with pytest.raises(BirdUnreachableError) as ei:
        BirdClient(path).connect()
    assert path in str(ei.value) and isinstance(ei.value, ConnectionError)


def test_daemon_that_never_answers_times_out(fake):
    srv = fake({}, banner=None)
    t = time.monotonic()
    with pytest.raises(BirdTimeoutError):
        BirdClient(srv.path, connect_timeout=0.3).connect()
    assert time.monotonic() - t < 3


def test_stall_mid_reply_hits_the_idle_timeout(fake):
    def stall(conn):
        conn.sendall(ROUTES[:60])
        time.sleep(2)
        return False

    srv = fake({"show route": stall})
    with BirdClient(srv.path, idle_timeout=0.3) as bird:
        with pytest.raises(BirdTimeoutError):
            bird.query("show route")


def test_slow_but_live_stream_is_not_cut(fake):
    body = b"1007-10.0.0.0/24        dev eth0 [direct1 06:04:57] * (240)\n" + b"".join(
        b" 10.0.%d.0/24        dev eth1 [direct1 06:04:57] * (240)\n" % i for i in range(1, 12))

    def trickle(conn):
        for i in range(0, len(body), 40):  # 0.05 s between chunks, 1 s in all > idle 0.3 s
            conn.sendall(body[i:i + 40])
            time.sleep(0.05)
        conn.sendall(b"0000 \n")

    srv = fake({"show route": trickle})
    with BirdClient(srv.path, idle_timeout=0.3) as bird:
        assert len(bird.query("show route")) == 12


def test_killed_mid_reply_reports_truncation_with_partial(fake):
    def die(conn):
        conn.sendall(ROUTES[:ROUTES.index(b"0000")])
        return False

    srv = fake({"show route": die})
    with BirdClient(srv.path) as bird:
        got = []
        with pytest.raises(BirdClosedError) as ei:
            for r in bird.stream("show route"):
                got.append(r)
    assert len(got) + len(ei.value.partial) >= 2
    assert "closed" in str(ei.value)


def test_bird16_double_final_commands_are_refused(fake):
    srv = fake({})
    with BirdClient(srv.path) as bird:
        with pytest.raises(ValueError, match="two final lines"):
            bird.query("show route filtered primary")
        with pytest.raises(ValueError):
            bird.query("show route export kernel1 filtered")
        with pytest.raises(ValueError):
            bird.query("show status\nshow route")


def test_bird2_and_calico_versions(fake):
    srv = fake({}, banner=b"0001 BIRD 2.0.12 ready.\n")
    with BirdClient(srv.path) as bird:
        assert bird.is_bird2
    srv2 = fake({}, banner=b"0001 BIRD v0.3.3+birdv1.6.8 ready.\n")
    with BirdClient(srv2.path) as bird:
        assert bird.version == "v0.3.3+birdv1.6.8" and not bird.is_bird2


def test_find_socket(tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(tmp_path / "b.ctl"))
    try:
        plain = tmp_path / "file.ctl"
        plain.write_text("not a socket")
        assert find_socket(4, [str(tmp_path / "missing"), str(plain), str(tmp_path / "b.ctl")]) \
            == str(tmp_path / "b.ctl")
        assert find_socket(4, [str(tmp_path / "missing")]) is None
    finally:
        s.close()


def _trickle(conn):
    """A daemon that keeps the idle timeout happy for ever: one valid route line every
    0.1 s and never the end of the reply."""
    i = 0
    try:
        while True:
            conn.sendall(b" 10.%d.%d.0/24        dev eth0 [direct1 06:04:57] * (240)\n"
                         % (i // 256 % 256, i % 256) if i else
                         b"1007-10.0.0.0/24        dev eth0 [direct1 06:04:57] * (240)\n")
            i += 1
            time.sleep(0.1)
    except OSError:
        return False


def test_deadline_bounds_a_trickling_daemon(fake):
    srv = fake({"show route": _trickle})
    t0 = time.monotonic()
    with BirdClient(srv.path, idle_timeout=5, deadline=1.0) as bird:
        with pytest.raises(BirdTimeoutError, match="1s deadline") as ei:
            bird.query("show route")
    assert 0.9 < time.monotonic() - t0 < 4
    assert srv.path in str(ei.value)


def test_status_cli_deadline_is_exit_1_one_line(fake, capsys):
    from nodestatus.cli import main

    srv = fake({"show status": STATUS, "show protocols all": b"0000 \n",
                "show route": _trickle})
    rc = main(["status", "--node", "n", "--socket4", srv.path, "--socket6", srv.path + "-6",
               "--deadline", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "deadline" in err[0] and srv.path in err[0]


@pytest.mark.parametrize("kw", [{"idle_timeout": 0}, {"idle_timeout": -5},
                                {"connect_timeout": float("nan")}, {"deadline": float("inf")},
                                {"chunk_size": 0}])
def test_bad_timeouts_are_refused(kw, tmp_path):
    with pytest.raises(ValueError):
        BirdClient(str(tmp_path / "x.ctl"), **kw)
