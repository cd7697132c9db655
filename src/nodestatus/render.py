"""Output: the resource as YAML/JSON, or ``calicoctl node status``-style tables (-o wide);
FIB check reports as JSON/YAML or one line per difference."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence

import msgspec

from .resource import CalicoNodeStatus, encode_json, encode_yaml
from .status import FamilyData, peer_of
from .structs import address_family

if TYPE_CHECKING:
    from .fibcheck import FibReport

__all__ = ("render", "table", "render_fib", "fib_summary_line")

_PEER_LABEL = {"NodeMesh": "node-to-node mesh", "NodePeer": "node specific",
               "GlobalPeer": "global"}


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An ASCII table in calicoctl's style."""
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, r)]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells):
        return "|" + "|".join(f" {str(c):<{w}} " for c, w in zip(cells, widths)) + "|"

    out = [sep, line([h.center(w) for h, w in zip(headers, widths)]), sep]
    out += [line(r) for r in rows]
    out.append(sep)
    return "\n".join(out)


def _wide(res: CalicoNodeStatus, v4: Optional[FamilyData], v6: Optional[FamilyData],
          fib_summary: Optional[str]) -> str:
    st = res.status
    out: List[str] = [f"CalicoNodeStatus {res.metadata.name} for node {res.spec.node} "
                      f"(classes {', '.join(res.spec.classes)})"]
    if st is None:
        return out[0] + "\n"
    if st.last_updated:
        out.append(f"updated {st.last_updated}")
    for fam, daemon, data in ((4, st.agent.bird_v4, v4), (6, st.agent.bird_v6, v6)):
        if "Agent" in res.spec.classes:
            if daemon.state == "Ready":
                out.append(f"BIRD IPv{fam}: Ready, version {daemon.version}, router ID "
                           f"{daemon.router_id}, booted {daemon.last_boot_time}, "
                           f"reconfigured {daemon.last_reconfiguration_time}")
                if data is not None and data.status is not None and data.status.state != "up":
                    out.append(f"  note: {data.status.state_text}")
                if data is not None and data.status is not None \
                        and data.status.graceful_restart_recovery:
                    out.append("  note: graceful restart recovery in progress "
                               + "; ".join(data.status.gr_details))
            else:
                out.append(f"BIRD IPv{fam}: NotReady")
    if "BGP" in res.spec.classes:
        for fam, data in ((4, v4), (6, v6)):
            rows = []
            if data is not None:
                for p in data.protocols:
                    pe = peer_of(p)
                    if pe is None or address_family(pe[1]) != fam:
                        continue
                    rows.append((pe[1], _PEER_LABEL[pe[0]], p.state, p.since, p.info))
            counts = (st.bgp.number_established_v4, st.bgp.number_not_established_v4) \
                if fam == 4 else (st.bgp.number_established_v6, st.bgp.number_not_established_v6)
            out.append("")
            out.append(f"IPv{fam} BGP status: {counts[0]} established, {counts[1]} not established")
            if rows:
                out.append(table(("PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"), rows))
            else:
                out.append(f"No IPv{fam} peers found.")
    if "Routes" in res.spec.classes:
        for fam, routes in ((4, st.routes.routes_v4), (6, st.routes.routes_v6)):
            out.append("")
            out.append(f"IPv{fam} routes: {len(routes)}")
            if routes:
                out.append(table(("TYPE", "DESTINATION", "GATEWAY", "INTERFACE", "LEARNED FROM"), [
                    (r.type, r.destination, r.gateway, r.interface,
                     (r.learned_from.source_type or "?") +
                     (f" {r.learned_from.peer_ip}" if r.learned_from.peer_ip else ""))
                    for r in routes]))
    if fib_summary:
        out.append("")
        out.append(fib_summary)
    return "\n".join(out) + "\n"


def render(res: CalicoNodeStatus, fmt: str, v4: Optional[FamilyData] = None,
           v6: Optional[FamilyData] = None, fib_summary: Optional[str] = None) -> str:
    if fmt == "json":
        return encode_json(res).decode() + "\n"
    if fmt == "wide":
        return _wide(res, v4, v6, fib_summary)
    return encode_yaml(res)


# --------------------------------------------------------------------------- FIB check


def render_fib(report: "FibReport", fmt: str) -> str:
    """json / yaml / wide (a summary per family, then one line per difference)."""
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(report)).decode() + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(msgspec.to_builtins(report), sort_keys=False)
    out = [fib_summary_line(report)]
    for f in report.families:
        where = f" in netns {f.netns}" if f.netns else ""
        out.append(f"IPv{f.family} table {f.table}{where}: BIRD {f.bird_routes} routes "
                   f"({f.bird_source}), kernel {f.kernel_routes}; re-checked {f.rechecked}"
                   + (f" ({f.settled_by_lookup} by lookup, {f.redumps} re-dumps)"
                      if f.rechecked else "")
                   + ("; monitor overflowed" if f.monitor_overflow else ""))
        for d in f.differences:
            bird = _hops_text(d.bird) if d.bird else "-"
            kern = "; ".join(_hops_text(k) for k in d.kernel) or "-"
            out.append(f"  {d.kind:<9} {d.prefix:<24} bird: {bird:<40} kernel: {kern}"
                       + (f"  ({d.reason})" if d.reason else ""))
        for p in f.sync_failed:
            out.append(f"  syncfail  {p:<24} (BIRD marks it `!`: its kernel protocol failed "
                       "to install it)")
        for p in f.linkdown:
            out.append(f"  linkdown  {p}")
    return "\n".join(out) + "\n"


def _hops_text(v: dict) -> str:
    """One kernel or BIRD route as ``ip route`` users read it: ``via GW dev IF``,
    ``blackhole``, ``proto static``, ``metric N``."""
    if v.get("type") != "unicast":
        text = str(v.get("type"))
    else:
        text = ", ".join(
            (f"via {h['gateway']} " if h.get("gateway") else "")
            + (f"dev {h['dev']}" if h.get("dev") else f"oif {h.get('oif')}")
            + (f" w{h['weight']}" if h.get("weight", 1) != 1 else "") for h in v.get("nexthops", []))
    if v.get("protocol") not in (None, "bird"):
        text += f" proto {v['protocol']}"
    if v.get("metric"):
        text += f" metric {v['metric']}"
    return text


def fib_summary_line(report: "FibReport") -> str:
    parts = []
    for f in report.families:
        problems = [f"{n} {what}" for n, what in (
            (f.missing, "missing"), (f.extra, "extra"), (f.mismatched, "mismatched"),
            (f.shadowed, "shadowed"), (len(f.sync_failed), "failed to sync"))]
        state = "in sync" if f.in_sync else ", ".join(problems)
        parts.append(f"IPv{f.family} {f.agree}/{f.bird_routes} agree ({state})")
    return "FIB check: " + "; ".join(parts)
