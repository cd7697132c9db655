"""Command line: ``nodestatus status`` (a node's CalicoNodeStatus, live or from captures)
, ``nodestatus parse`` (captures -> records) and ``nodestatus diff`` (two captures ->
changes). Thin: arguments, exit codes and output; the work is in ``sources``, ``status``,
``captures`` and ``diff``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence


from . import __version__
from .errors import NodeStatusError, ParseError

SAMPLES = Path(__file__).parent / "samples" / "calico-node1"
EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2

#: Every module the package imports that the core install lacks -> (the extra of
#: pyproject.toml that installs it, what needs it). A command that hits a missing one names the
#: install in one line; tests/unit/test_installed.py keeps this map complete.
OPTIONAL_MODULES = {
    "etcd3gw": ("etcd", "the etcdv3 datastore"),
    "requests": ("etcd", "the etcdv3 datastore"),          # sinks/etcd.py; comes with etcd3gw
    "kubernetes": ("kube", "the kubernetes datastore"),
    "urllib3": ("kube", "the kubernetes datastore"),       # sinks/kube.py; comes with kubernetes
}


def _sample_files() -> List[Path]:
    """The bundled capture of a real Calico-shaped node: what `parse` shows by default."""
    return sorted(SAMPLES.glob("v*/*.raw"))


def cmd_parse(args) -> int:
    from . import captures

    try:
        only = captures.parse_only(args.only or ())
    except ValueError as exc:
        print(f"nodestatus parse: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.jobs is not None and args.jobs < 1:
        print("nodestatus parse: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    paths = args.paths or [str(p) for p in _sample_files()]
    inputs = captures.expand(paths, args.output_dir, args.fmt)
    opts = captures.Options(fmt=args.fmt, only=only, command=args.command,
                            framing=args.framing, jobs=args.jobs or os.cpu_count() or 1,
                            fail_fast=args.fail_fast)
    out = None if args.output_dir else sys.stdout.buffer
    summary = captures.run(inputs, opts, out=out, err=sys.stderr)
    if not args.quiet:
        sys.stderr.write(summary.text())
    else:
        for p in summary.problems:
            print(p, file=sys.stderr)
    return EXIT_PROBLEM if summary.problems else EXIT_OK


def cmd_diff(args) -> int:
    from .diff import DiffInputError, diff_files, render

    try:
        d = diff_files(args.old, args.new, command=args.command)
    except DiffInputError as exc:
        print(f"nodestatus diff: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.buffer.write(render(d, args.output))
    sys.stdout.buffer.flush()
    return EXIT_OK if d.identical else EXIT_PROBLEM


def _default_node() -> str:
    import socket as _socket

    return (os.environ.get("NODENAME") or _socket.gethostname()).lower()


def _resource_from_args(args):
    from .resource import CalicoNodeStatus, CalicoNodeStatusSpec, ObjectMeta, decode_resource, validate

    if args.file:
        source = args.file
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        res = decode_resource(data, source=source)
        if args.node and args.node != res.spec.node:
            res.spec.node = args.node
        if args.classes:
            res.spec.classes = [c.strip() for c in args.classes.split(",") if c.strip()]
        return validate(res, source=source)
    node = args.node or _default_node()
    classes = [c.strip() for c in (args.classes or "Agent,BGP,Routes").split(",") if c.strip()]
    res = CalicoNodeStatus(api_version="projectcalico.org/v3", kind="CalicoNodeStatus",
                           metadata=ObjectMeta(name=args.name or f"{node}-status"),
                           spec=CalicoNodeStatusSpec(node=node, classes=classes,
                                                     update_period_seconds=args.period))
    return validate(res, source="command line")


def cmd_status(args) -> int:
    from .birdsock import find_socket
    from .errors import BirdConnectionError, BirdReplyError
    from .render import render
    from .resource import SpecError
    from .sources import collect_dumps, collect_live
    from .status import build_status

    try:
        res = _resource_from_args(args)
    except (SpecError, OSError) as exc:
        print(f"nodestatus status: {exc}", file=sys.stderr)
        return EXIT_USAGE
    dumps = args.dump4 or args.dump6
    live = args.socket4 or args.socket6 or find_socket(4) or find_socket(6)
    from_bird = False
    try:
        if dumps:
            v4, v6 = collect_dumps(args.dump4 or (), args.dump6 or (), res.spec.classes)
        elif live or not args.sample_fallback:
            v4, v6 = collect_live(res.spec.classes, args.socket4, args.socket6,
                                  connect_timeout=args.timeout, idle_timeout=args.idle_timeout)
            from_bird = True
        else:
            print("nodestatus: no BIRD control socket found (looked for "
                  "/var/run/calico/bird{,6}.ctl and /var/run/bird/bird{,6}.ctl); showing the "
                  f"bundled sample node capture ({SAMPLES})", file=sys.stderr)
            v4, v6 = collect_dumps(sorted(str(p) for p in SAMPLES.glob("v4/*.raw")),
                                   sorted(str(p) for p in SAMPLES.glob("v6/*.raw")),
                                   res.spec.classes)
    except (BirdConnectionError, BirdReplyError, ParseError, NodeStatusError) as exc:
        print(f"nodestatus status: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    full = build_status(res, v4, v6)
    fib = None
    if args.output == "wide" and from_bird and (v4.reachable or v6.reachable):
        fib = _fib_summary(v4, v6, args.netns)
    sys.stdout.write(render(full, args.output, v4, v6, fib_summary=fib))
    return EXIT_OK


def _fib_summary(v4, v6, netns=None) -> str:
    """One line for `status -o wide` when live: did BIRD's routes reach the kernel?"""
    from .fibcheck import FibReport, check_fib, summary_line

    report = FibReport()
    try:
        for data in (v4, v6):
            if data.reachable and data.source:
                part = check_fib(socket=data.source, families=(data.family,), netns=netns)
                report.families.extend(part.families)
    except Exception as exc:  # the status itself is done; say why the summary is missing
        return f"FIB check: not available ({type(exc).__name__}: {exc})"
    report.in_sync = all(f.in_sync for f in report.families)
    return summary_line(report) if report.families else "FIB check: nothing to compare"


def cmd_fib_check(args) -> int:
    from .errors import BirdConnectionError, BirdReplyError, KernelReadError
    from .fibcheck import check_fib, render_fib

    if args.socket and args.routes:
        print("nodestatus fib-check: give --socket or --routes, not both", file=sys.stderr)
        return EXIT_USAGE
    if args.table < 0 or args.table > 0xFFFFFFFF:
        print("nodestatus fib-check: --table must be a table number", file=sys.stderr)
        return EXIT_USAGE
    families = (4, 6) if args.family is None else (args.family,)
    try:
        report = check_fib(socket=args.socket, routes_file=args.routes, netns=args.netns,
                           table=args.table, kernel_json=args.kernel_json or (),
                           families=families, connect_timeout=args.timeout)
    except (BirdConnectionError, BirdReplyError, ParseError, KernelReadError,
            NodeStatusError, OSError) as exc:
        print(f"nodestatus fib-check: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    if not report.families:
        print("nodestatus fib-check: nothing to compare (no BIRD socket or capture for any "
              "family)", file=sys.stderr)
        return EXIT_PROBLEM
    sys.stdout.write(render_fib(report, args.output))
    return EXIT_OK if report.in_sync else EXIT_PROBLEM


def _make_sink(args):
    if args.datastore == "etcdv3":
        from .sinks.etcd import EtcdSink

        return EtcdSink(args.etcd_endpoints or None, ca_cert_file=args.etcd_ca_cert_file,
                        cert_file=args.etcd_cert_file, key_file=args.etcd_key_file)
    from .sinks.kube import KubeSink

    return KubeSink(kubeconfig=args.kubeconfig)


def cmd_agent(args) -> int:
    import logging
    import signal

    from .agent import Agent, JsonLogFormatter
    from .sinks import SinkError
    from .sources import collect_live

    node = (args.node or os.environ.get("NODENAME") or "").strip()
    if not node:
        print("nodestatus agent: --node or $NODENAME is required", file=sys.stderr)
        return EXIT_USAGE
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter() if args.log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("nodestatus")
    root.handlers[:] = [handler]
    root.setLevel(args.log_level.upper())
    try:
        sink = _make_sink(args)
    except (NodeStatusError, OSError) as exc:
        print(f"nodestatus agent: cannot use the {args.datastore} datastore: {exc}",
              file=sys.stderr)
        return EXIT_USAGE

    def collect(classes):
        return collect_live(classes, args.socket4, args.socket6,
                            connect_timeout=args.timeout, idle_timeout=args.idle_timeout)

    agent = Agent(sink, node, collect)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop())
    root.info("agent starting", extra={"fields": {"node": node, "datastore": args.datastore,
                                                  "once": args.once}})
    try:
        ok = agent.run(once=args.once)
    except SinkError as exc:
        root.error("datastore unavailable", extra={"fields": {"error": str(exc)}})
        return EXIT_PROBLEM
    finally:
        sink.close()
    root.info("agent stopped", extra={"fields": {"writes": agent.writes,
                                                 "bird_queries": agent.bird_queries}})
    return EXIT_OK if ok else EXIT_PROBLEM     # --once: a failed report is an error


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nodestatus", description=__doc__)
    ap.add_argument("--version", action="version", version=f"nodestatus {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("status", help="this node's CalicoNodeStatus from BIRD (live or captures)")
    s.add_argument("--node", help="node name (default: $NODENAME, else the host name)")
    s.add_argument("--name", help="resource name when not read with -f (default NODE-status)")
    s.add_argument("--classes", help="comma-separated: Agent,BGP,Routes (default: all)")
    s.add_argument("--period", type=int, default=0,
                   help="spec.updatePeriodSeconds when not read with -f (default 0)")
    s.add_argument("--socket4", help="IPv4 BIRD control socket (default: Calico's, then Debian's)")
    s.add_argument("--socket6", help="IPv6 BIRD control socket")
    s.add_argument("--dump4", nargs="+", metavar="FILE", help="captured IPv4 replies (any "
                   "framing, any order, gzip allowed) instead of a live socket")
    s.add_argument("--dump6", nargs="+", metavar="FILE", help="captured IPv6 replies")
    s.add_argument("-f", "--file", help="a CalicoNodeStatus resource (YAML or JSON, '-' = stdin)")
    s.add_argument("-o", "--output", choices=("yaml", "json", "wide"), default="yaml")
    s.add_argument("--timeout", type=float, default=5.0, help="connect timeout (s)")
    s.add_argument("--idle-timeout", type=float, default=30.0,
                   help="longest silence while reading a reply (s)")
    s.add_argument("--netns", help="network namespace whose kernel table BIRD writes, for the "
                   "FIB summary of -o wide (default: this one)")
    s.add_argument("--sample-fallback", action="store_true",
                   help="with no socket found and no dumps, use the bundled sample capture")
    s.set_defaults(func=cmd_status)
    p = sub.add_parser("parse", help="parse BIRD captures into records (NDJSON by default)",
                       description="Parse capture files (BIRD output in any framing, `ip -j "
                       "route` JSON; gzip/bzip2/xz read transparently) into records. "
                       "A summary and every problem (file:line: message) go to stderr; "
                       "exit 1 if any file had a problem.")
    p.add_argument("paths", nargs="*", help="files or folders (recursive; '-' = stdin); "
                   "default: the bundled sample node capture")
    p.add_argument("-o", "--format", dest="fmt", choices=("ndjson", "json", "msgpack", "yaml"),
                   default="ndjson", help="record format (msgpack: a stream of maps)")
    p.add_argument("--only", action="append", metavar="KINDS",
                   help="comma-separated: routes, protocols, status, counts, errors, "
                   "unsupported, banners, kernel, replies (reply ends; never by default)")
    p.add_argument("--output", "--output-dir", dest="output_dir", metavar="DIR",
                   help="one output file per input under DIR instead of stdout")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="worker processes (default: all cores); output order stays stable")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first problem")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no summary on stderr (problems are still printed)")
    p.add_argument("--framing", choices=("raw", "birdc-v", "birdc"), default=None,
                   help="force the framing instead of detecting it")
    p.add_argument("--command", default=None,
                   help="the BIRD command that produced the input, when detection cannot tell")
    p.set_defaults(func=cmd_parse)
    d = sub.add_parser("diff", help="compare two route or protocol captures",
                       description="Routes added, removed and changed (keyed by table, "
                       "prefix, protocol, from) and protocols whose state changed. Exit 0 "
                       "identical, 1 different, 2 bad arguments or unreadable captures.")
    d.add_argument("old")
    d.add_argument("new")
    d.add_argument("-o", "--output", choices=("ndjson", "json", "wide"), default="wide")
    d.add_argument("--command", default=None, help="the BIRD command of both captures")
    d.set_defaults(func=cmd_diff)
    f = sub.add_parser("fib-check", help="BIRD's exported routes against the kernel's table")
    src = f.add_mutually_exclusive_group()
    src.add_argument("--socket", help="BIRD control socket (default: per family, Calico's then "
                     "Debian's path)")
    src.add_argument("--routes", help="a captured `show route [all]` / `show route export "
                     "<kernel protocol>` reply instead of a live BIRD")
    f.add_argument("--netns", help="read the kernel table inside this network namespace")
    f.add_argument("--table", type=int, default=254, help="kernel table BIRD writes (default 254, main)")
    f.add_argument("--kernel-json", nargs="+", metavar="FILE",
                   help="captured `ip -j route show` (and `ip -6 -j …`) instead of netlink")
    f.add_argument("--family", type=int, choices=(4, 6), help="check one family only")
    f.add_argument("--timeout", type=float, default=5.0, help="BIRD connect timeout (s)")
    f.add_argument("-o", "--output", choices=("json", "yaml", "wide"), default="wide")
    f.set_defaults(func=cmd_fib_check)
    a = sub.add_parser("agent", help="keep this node's CalicoNodeStatus resources filled")
    a.add_argument("--node", help="this node's name (default: $NODENAME, as Calico)")
    a.add_argument("--datastore", choices=("etcdv3", "kubernetes"),
                   default=os.environ.get("DATASTORE_TYPE", "kubernetes"))
    a.add_argument("--once", action="store_true", help="report one round and exit")
    a.add_argument("--socket4", help="IPv4 BIRD control socket (default: Calico's, then Debian's)")
    a.add_argument("--socket6", help="IPv6 BIRD control socket")
    a.add_argument("--etcd-endpoints", default=None, help="default $ETCD_ENDPOINTS")
    a.add_argument("--etcd-ca-cert-file", default=None, help="default $ETCD_CA_CERT_FILE")
    a.add_argument("--etcd-cert-file", default=None, help="default $ETCD_CERT_FILE")
    a.add_argument("--etcd-key-file", default=None, help="default $ETCD_KEY_FILE")
    a.add_argument("--kubeconfig", default=None,
                   help="default: in-cluster config, else $KUBECONFIG / ~/.kube/config")
    a.add_argument("--timeout", type=float, default=5.0, help="BIRD connect timeout (s)")
    a.add_argument("--idle-timeout", type=float, default=30.0)
    a.add_argument("--log-format", choices=("json", "text"), default="json")
    a.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    a.set_defaults(func=cmd_agent)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    try:
        return args.func(args)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except ModuleNotFoundError as exc:
        missing = _missing_extra(exc)
        if missing is None:
            raise
        print(f"nodestatus {args.cmd}: {missing}", file=sys.stderr)
        return EXIT_USAGE


def _missing_extra(exc: ModuleNotFoundError) -> Optional[str]:
    """The line naming the ``pip install`` when ``exc`` is about a module of
    :data:`OPTIONAL_MODULES`; None otherwise (a real bug: let it raise)."""
    module = (exc.name or "").split(".")[0]
    if module not in OPTIONAL_MODULES:
        return None
    extra, what = OPTIONAL_MODULES[module]
    return f"support for {what} is not installed (no module {module!r}): " \
           f"pip install 'nodestatus[{extra}]'"


if __name__ == "__main__":
    sys.exit(main())
