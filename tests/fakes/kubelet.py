"""What the kubelet does with the agent's health endpoints: an HTTP GET on the node's
loopback (the DaemonSet runs on the host network), 2xx/3xx healthy, anything else or no
answer unhealthy. Plus a free loopback port for the agent to listen on."""
from __future__ import annotations

import http.client
import json
import socket
from typing import Optional, Tuple


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(port: int, path: str, timeout: float = 5.0) -> Tuple[Optional[int], dict]:
    """(HTTP status, JSON body); (None, {}) when nothing answers, as a failed probe."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, json.loads(body) if body else {}
    except OSError:
        return None, {}
    finally:
        conn.close()
