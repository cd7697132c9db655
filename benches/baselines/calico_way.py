"""Baseline: a CalicoNodeStatus built the way Calico's node agent builds it, in Python.

A line-for-line port of projectcalico/calico ``node/pkg/status`` (``reporter.go``
``reportStatus`` and ``populators/{bird_conn,bird_status,peers,route}.go``), BIRD 1.6 era
(one daemon per family: ``bird.ctl`` / ``bird6.ctl``):

* for IPv4 then IPv6, one populator per requested class, and each opens its own connection
  to that family's control socket (the banner is the first line its scanner sees);
* Agent: ``show status``, each line matched by prefix (``Router ID is`` …); ``version``
  only when the line starts with ``BIRD v``;
* BGP: ``show protocols``, each row split into fields, kept when the protocol is ``BGP`` and
  the name matches ``^(Global|Node|Mesh)_(.+)$``; then, on the same connection, one
  ``show protocols all <name>`` per peer (N+1 queries) for ``BGP state:`` and
  ``Neighbor address:``;
* Routes: ``show route``, every line matched with Calico's via/dev/blackhole/unreachable
  regexes into a list of routes, which is then converted to API routes (a route from a
  protocol that is not kernel*/static*/direct* or a Calico peer name fails the whole list).

Reading is line by line through a buffered reader, as Calico's ``bufio.Scanner`` does (its
per-line ``SetReadDeadline`` is the socket timeout here). Kept from Calico on purpose: an
unreachable IPv6 socket resets ``status.bgp`` and ``status.routes`` as a whole (Calico's
populators do that for either family, wiping the IPv4 peers and routes populated before),
and an unknown BIRD session state becomes ``""``.
"""
from __future__ import annotations

import datetime
import re
import socket
from typing import Dict, List, Optional, Tuple

import msgspec

from nodestatus.resource import (
    BGPDaemonStatus,
    CalicoNodeBGPRouteStatus,
    CalicoNodeBGPStatus,
    CalicoNodePeer,
    CalicoNodeRoute,
    CalicoNodeRouteLearnedFrom,
    CalicoNodeStatusStatus,
)

__all__ = ("label", "calico_status", "PopulateError")

label = "calico-way"

BIRD_TIMEOUT = 2.0  # birdTimeOut, per read

_BGP_PEER = re.compile(r"^(Global|Node|Mesh)_(.+)$")
_BGP_TYPE = {"Global": "GlobalPeer", "Mesh": "NodeMesh", "Node": "NodePeer"}
_HEADINGS = ["name", "proto", "table", "state", "since", "info"]
_SESSION_STATES = {s: s for s in ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm",
                                  "Established", "Close")}
_VIA = re.compile(r"(?P<dest>\S*)\s*via\s(?P<gateway>\S*)\s*on\s(?P<iface>.*)\s\[(?P<from>\S*)\s.*\].*")
_DEV = re.compile(r"(?P<dest>\S*)\s*dev\s(?P<iface>.*)\s\[(?P<from>\S*)\s.*\].*")
_BLACKHOLE = re.compile(r"(?P<dest>\S*)\s*blackhole\s\[(?P<from>\S*)\s.*\].*")
_UNREACHABLE = re.compile(r"(?P<dest>\S*)\s*unreachable\s\[(?P<from>\S*)\s.*\].*")


class PopulateError(Exception):
    """A populator failed: Calico writes nothing for this round."""


class SocketUnreachable(PopulateError):
    """ErrorSocketConnection: the family is NotReady / empty, not an error."""


class _BirdConn:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise SocketUnreachable(f"unable to connect to BIRD socket {path}: {exc}") from None
        self.sock.settimeout(BIRD_TIMEOUT)
        self.reader = self.sock.makefile("rb")

    def write(self, cmd: str) -> None:
        self.sock.sendall(cmd.encode())

    def lines(self):
        for raw in self.reader:
            yield raw.decode().rstrip("\n")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


# -- bird_status.go -------------------------------------------------------------------------
def _bird_status(path: str) -> BGPDaemonStatus:
    conn = _BirdConn(path)
    try:
        conn.write("show status\n")
        st = {"state": "NotReady"}
        for line in conn.lines():
            if line.startswith("0013"):
                break
            if line.startswith(("0001", "1000", "1011")):
                text = line[5:]
            elif line.startswith(" "):
                text = line[1:]
            else:
                break  # "unexpected output line from BIRD" (e.g. graceful restart)
            if "BIRD" in text and "ready" in text:
                st["state"] = "Ready"
            elif text.startswith("BIRD v"):
                st["version"] = text[len("BIRD "):]
            elif text.startswith("Router ID is "):
                st["router_id"] = text[len("Router ID is "):]
            elif text.startswith("Last reboot on "):
                st["last_boot_time"] = text[len("Last reboot on "):]
            elif text.startswith("Last reconfiguration on "):
                st["last_reconfiguration_time"] = text[len("Last reconfiguration on "):]
        return BGPDaemonStatus(**st)
    finally:
        conn.close()


# -- peers.go -------------------------------------------------------------------------------
def _session_name(sep: str, name: str) -> Tuple[str, str]:
    m = _BGP_PEER.search(name)
    if m is None:
        raise PopulateError(f"not a valid line: session name {name!r} is not a correct format")
    return m.group(1), m.group(2).replace("_", sep)


def _peer_row(line: str, sep: str) -> Optional[dict]:
    cols = line.split()
    if len(cols) < 6 or cols[1] != "BGP":
        return None
    try:
        ptype, _ = _session_name(sep, cols[0])
    except PopulateError:
        return None
    return {"session": cols[0], "type": ptype, "state": cols[3], "since": cols[4],
            "bgp_state": "", "peer_ip": ""}


def _complete(conn: _BirdConn, peer: dict) -> None:
    conn.write(f"show protocols all {peer['session']}\n")
    for line in conn.lines():
        if line.startswith("0000"):
            break
        if "BGP state:" in line:
            peer["bgp_state"] = line.replace("BGP state:", " ").strip()
        elif "Neighbor address:" in line:
            peer["peer_ip"] = line.replace("Neighbor address:", " ").strip()


def _bgp_peers(path: str, sep: str) -> List[dict]:
    conn = _BirdConn(path)
    try:
        conn.write("show protocols\n")
        peers = []
        for line in conn.lines():
            if line.startswith("0000"):
                break
            if line.startswith("0001"):
                continue
            if line.startswith("2002"):
                if line[5:].split() != _HEADINGS:
                    raise PopulateError("unknown BIRD table output format")
                continue
            if line.startswith("1002"):
                row = _peer_row(line[5:], sep)
            elif line.startswith(" "):
                row = _peer_row(line[1:], sep)
            else:
                raise PopulateError(f"unexpected output line from BIRD: {line}")
            if row is not None:
                peers.append(row)
        for peer in peers:
            _complete(conn, peer)
        return peers
    finally:
        conn.close()


# -- route.go -------------------------------------------------------------------------------
def _route_line(line: str, prev_dest: str):
    """unmarshalBIRD: (dest, gateway, iface, learnedFrom, primary) or None."""
    dest = gw = iface = frm = ""
    if " via " in line:
        m = _VIA.search(line)
        if m is None:
            return None
        dest, gw, iface, frm = m.group(1, 2, 3, 4)
    elif " dev " in line:
        m = _DEV.search(line)
        if m is None:
            return None
        dest, iface, frm = m.group(1, 2, 3)
        gw = "N/A"
    elif " blackhole " in line:
        m = _BLACKHOLE.search(line)
        if m is None:
            return None
        dest, frm = m.group(1, 2)
        gw, iface = "N/A", "blackhole"
    elif " unreachable " in line:
        m = _UNREACHABLE.search(line)
        if m is None:
            return None
        dest, frm = m.group(1, 2)
        gw, iface = "N/A", "unreachable"
    if not dest:
        if not prev_dest:
            return None
        dest = prev_dest
    return dest, gw, iface, frm, "] *" in line


def _bird_routes(path: str) -> List[tuple]:
    conn = _BirdConn(path)
    try:
        conn.write("show route\n")
        routes = []
        prev = ""
        for line in conn.lines():
            if line.startswith("0000"):
                break
            if line.startswith("0001"):
                continue
            if line.startswith("1007"):
                r = _route_line(line[5:], prev)
            elif line.startswith(" "):
                r = _route_line(line[1:], prev)
            else:
                raise PopulateError(f"unexpected output line from BIRD: {line}")
            prev = r[0] if r is not None else ""
            if r is not None:
                routes.append(r)
        return routes
    finally:
        conn.close()


def _api_route(r: tuple) -> CalicoNodeRoute:
    dest, gw, iface, frm, primary = r
    if frm.startswith("kernel"):
        lf = CalicoNodeRouteLearnedFrom(source_type="Kernel")
    elif frm.startswith("static"):
        lf = CalicoNodeRouteLearnedFrom(source_type="Static")
    elif frm.startswith("direct"):
        lf = CalicoNodeRouteLearnedFrom(source_type="Direct")
    else:
        ptype, ip = _session_name(":" if ":" in dest else ".", frm)
        lf = CalicoNodeRouteLearnedFrom(
            source_type="NodeMesh" if ptype == "Mesh" else "BGPPeer", peer_ip=ip)
    return CalicoNodeRoute(type="FIB" if primary else "RIB", destination=dest, gateway=gw,
                           interface=iface, learned_from=lf)


# -- the populators and reportStatus --------------------------------------------------------
def _populate(st: CalicoNodeStatusStatus, ipv: int, cls: str, path: str) -> None:
    fam = "v4" if ipv == 4 else "v6"
    try:
        if cls == "Agent":
            setattr(st.agent, "bird_" + fam, _bird_status(path))
        elif cls == "BGP":
            peers = _bgp_peers(path, "." if ipv == 4 else ":")
            up = sum(p["state"] == "up" for p in peers)
            setattr(st.bgp, "peers_" + fam, [
                CalicoNodePeer(peer_ip=p["peer_ip"], type=_BGP_TYPE[p["type"]],
                               state=_SESSION_STATES.get(p["bgp_state"], ""), since=p["since"])
                for p in peers])
            setattr(st.bgp, "number_established_" + fam, up)
            setattr(st.bgp, "number_not_established_" + fam, len(peers) - up)
        elif cls == "Routes":
            setattr(st.routes, "routes_" + fam, [_api_route(r) for r in _bird_routes(path)])
    except SocketUnreachable:
        if cls == "Agent":
            setattr(st.agent, "bird_" + fam, BGPDaemonStatus(state="NotReady"))
        elif cls == "BGP":  # for either family, Calico resets the whole BGP block
            st.bgp = CalicoNodeBGPStatus(number_established_v4=0, number_not_established_v4=0,
                                         number_established_v6=0, number_not_established_v6=0)
        elif cls == "Routes":  # ... and the whole Routes block
            st.routes = CalicoNodeBGPRouteStatus()


def calico_status(resource, socket4: str, socket6: str, *, now=None):
    """``resource`` with its status filled as Calico's reporter would (all or nothing:
    a PopulateError propagates)."""
    st = CalicoNodeStatusStatus()
    paths: Dict[int, str] = {4: socket4, 6: socket6}
    for ipv in (4, 6):
        for cls in resource.spec.classes:
            _populate(st, ipv, cls, paths[ipv])
    now = now or datetime.datetime.now(datetime.timezone.utc)
    st.last_updated = now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return msgspec.structs.replace(resource, status=st)
