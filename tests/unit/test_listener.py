"""The agent's HTTP listener (``nodestatus.listener``), over real HTTP on loopback."""
from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest

from nodestatus.listener import Listener, Response, parse_address, probe_endpoint


def _get(listener: Listener, path: str, method: str = "GET"):
    host, port = listener.address
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


@pytest.fixture
def listener():
    lst = Listener("127.0.0.1", 0)
    yield lst
    lst.close()


def test_routes_by_path(listener):
    state = {"ok": True}
    listener.route("/healthz", probe_endpoint(lambda: (state["ok"], {"late": 0.5})))
    listener.route("/metrics", lambda: Response(body=b"x 1\n"))
    listener.start()
    assert listener.address[1] != 0
    code, ctype, body = _get(listener, "/healthz")
    assert (code, ctype) == (200, "application/json")
    assert json.loads(body) == {"ok": True, "late": 0.5}
    state["ok"] = False
    code, _, body = _get(listener, "/healthz?verbose=1")          # query ignored
    assert code == 503 and json.loads(body)["ok"] is False
    assert _get(listener, "/metrics")[::2] == (200, b"x 1\n")
    assert _get(listener, "/nope")[0] == 404
    code, _, body = _get(listener, "/healthz", "HEAD")
    assert code == 503 and body == b""


def test_a_failing_handler_answers_500_and_the_listener_lives(listener):
    def broken():
        raise RuntimeError("boom")

    listener.route("/broken", broken).route("/fine", lambda: Response(body=b"ok"))
    listener.start()
    code, _, body = _get(listener, "/broken")
    assert code == 500 and b"RuntimeError: boom" in body
    assert _get(listener, "/fine")[::2] == (200, b"ok")


def test_concurrent_requests_and_close(listener):
    gate = threading.Event()

    def slow():
        gate.wait(5)
        return Response(body=b"slow")

    listener.route("/slow", slow).route("/fast", lambda: Response(body=b"fast"))
    listener.start()
    results = []
    t = threading.Thread(target=lambda: results.append(_get(listener, "/slow")))
    t.start()
    assert _get(listener, "/fast")[2] == b"fast"        # not blocked by the slow one
    gate.set()
    t.join(5)
    assert results[0][2] == b"slow"
    host, port = listener.address
    listener.close()
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()


def test_address_in_use_is_an_os_error(listener):
    listener.start()
    with pytest.raises(OSError):
        Listener(*listener.address).start()


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    lst = Listener("::1", 0).route("/healthz", lambda: Response(body=b"ok"))
    try:
        lst.start()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert _get(lst, "/healthz")[::2] == (200, b"ok")
    finally:
        lst.close()


@pytest.mark.parametrize("text, want", [
    ("127.0.0.1:9180", ("127.0.0.1", 9180)),
    (":9180", ("", 9180)),
    ("[::1]:80", ("::1", 80)),
    ("localhost:1", ("localhost", 1)),
])
def test_parse_address(text, want):
    assert parse_address(text) == want


@pytest.mark.parametrize("text, match", [
    ("9180", "not HOST:PORT"),
    ("host:", "port must be"),
    ("host:0", "port must be"),
    ("host:65536", "port must be"),
    ("::1:80", "in brackets"),
    ("host:http", "port must be"),
])
def test_parse_address_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_address(text)
