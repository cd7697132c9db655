"""A small HTTP listener for the agent's endpoints: ``/healthz`` and ``/readyz`` now, other
read-only endpoints (``/metrics``) later, on the same port.

Standard library only (``http.server`` in a daemon thread): the endpoints answer a
kubelet probe or a scraper a few times a minute, so a thread per request is plenty, and
the agent pulls in no web framework. Handlers are registered by path and return a
:class:`Response`; a handler that raises answers 500 with the error, never kills the
listener.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Optional, Tuple

import msgspec

__all__ = ("Response", "Listener", "parse_address", "probe_endpoint")

log = logging.getLogger("nodestatus.listener")


class Response(msgspec.Struct, kw_only=True):
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


Handler = Callable[[], Response]


def parse_address(text: str) -> Tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (every interface) -> (host, port);
    ValueError saying what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, [ADDR]:PORT")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def probe_endpoint(probe: Callable[[], Tuple[bool, dict]]) -> Handler:
    """A handler for a probe returning (ok, details): 200 or 503 with a JSON body
    ``{"ok": ..., **details}``."""

    def handle() -> Response:
        ok, details = probe()
        body = json.dumps(dict(ok=ok, **details), default=str).encode() + b"\n"
        return Response(status=200 if ok else 503, body=body,
                        content_type="application/json")

    return handle


class Listener:
    """``Listener(host, port).route("/healthz", handler).start()``; :meth:`close` stops it.
    Port 0 picks a free port (see :attr:`address`)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.routes: Dict[str, Handler] = {}
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    def route(self, path: str, handler: Handler) -> "Listener":
        self.routes[path] = handler
        return self

    @property
    def address(self) -> Tuple[str, int]:
        """Where it listens (the real port once started)."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> "Listener":
        """Bind and serve in a daemon thread; OSError when the address cannot be used."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_cls = type("_Server", (ThreadingHTTPServer,), {
            "address_family": family, "daemon_threads": True, "block_on_close": False})
        server = server_cls((self.host, self.port), _Handler)
        server.routes = self.routes       # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.2,),
                                        name="http-listener", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "nodestatus"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # probes every few seconds: quiet
        log.debug("http %s", format % args)

    def _answer(self, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        handler = self.server.routes.get(path)          # type: ignore[attr-defined]
        if handler is None:
            resp = Response(status=404, body=b"not found\n")
        else:
            try:
                resp = handler()
            except Exception as exc:   # a broken handler answers 500, the listener lives
                log.error("endpoint failed", extra={"fields": {
                    "path": path, "error": f"{type(exc).__name__}: {exc}"}})
                resp = Response(status=500, body=f"{type(exc).__name__}: {exc}\n".encode())
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(resp.body)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)
