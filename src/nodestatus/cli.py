"""Command line: arguments, exit codes and output; the work is in ``sources``, ``status``,
``captures``, ``diff``, ``fibcheck`` and ``agent``.

Exit codes, for every command: 0 done (or in sync, or identical); 1 BIRD, the kernel or
the datastore failed, or differences were found; 2 bad arguments or bad input. Every
failure is one line on stderr that names the file, socket or option.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, NoReturn, Optional, Sequence, Tuple

from . import __version__
from .errors import InputError, NodeStatusError

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
    "zstandard": ("zstd", "zstd-compressed captures"),     # inputs.py
    "pyarrow": ("arrow", "Arrow tables and Parquet output"),  # tables.py, parse -o parquet/arrow
    "prometheus_client": ("metrics", "Prometheus metrics"),  # metrics.py
}

DESCRIPTION = """\
BIRD's control-socket answers as CalicoNodeStatus, records and FIB checks.

commands:
  status      this node's CalicoNodeStatus from its BIRD daemons (live, or captured replies)
  parse       captures (files, folders, stdin) -> records as ndjson/json/msgpack/yaml,
              a Parquet dataset or an Arrow stream
  diff        two captures -> routes and protocols added, removed or changed
  fib-check   BIRD's exported routes against the kernel's routing table
  agent       keep this node's CalicoNodeStatus resources filled (etcd or Kubernetes)
  exporter    Prometheus metrics of BIRD (sessions, routes, FIB drift), no datastore
  cluster     every node's CalicoNodeStatus in one view, with the problems across nodes

exit codes: 0 done / in sync / identical; 1 BIRD, kernel or datastore error, or
differences found; 2 bad arguments or bad input. `nodestatus COMMAND --help` for details.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``nodestatus status: --timeout: …`` and exit 2."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):      # "argument --timeout: …" -> "--timeout: …"
            message = message[len("argument "):]
        sys.stderr.write(f"{self.prog}: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def _seconds(text: str) -> float:
    """A timeout or deadline: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return value


def _int_in(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within {low}..{high}, got {value}")
        return value
    parse.__name__ = "int"
    return parse


def _fail(cmd: str, exc: object, code: int) -> int:
    print(f"nodestatus {cmd}: {exc}", file=sys.stderr)
    return code


def _collect(args, classes):
    """Ask the BIRD sockets of ``args`` for ``classes`` with its timeouts and deadline."""
    from .sources import collect_live

    return collect_live(classes, args.socket4, args.socket6, connect_timeout=args.timeout,
                        idle_timeout=args.idle_timeout, deadline=args.deadline)


# --------------------------------------------------------------------------- status


def _default_node() -> str:
    import socket as _socket

    return (os.environ.get("NODENAME") or _socket.gethostname()).lower()


def _resource_from_args(args: Any) -> Any:
    from .inputs import open_input
    from .resource import CalicoNodeStatus, CalicoNodeStatusSpec, ObjectMeta, decode_resource, validate

    if args.file:
        with open_input(args.file) as inp:
            res = decode_resource(inp.read_all(), source=inp.name)
        if args.node and args.node != res.spec.node:
            res.spec.node = args.node
        if args.classes:
            res.spec.classes = [c.strip() for c in args.classes.split(",") if c.strip()]
        return validate(res, source=args.file)
    node = args.node or _default_node()
    classes = [c.strip() for c in (args.classes or "Agent,BGP,Routes").split(",") if c.strip()]
    res = CalicoNodeStatus(api_version="projectcalico.org/v3", kind="CalicoNodeStatus",
                           metadata=ObjectMeta(name=args.name or f"{node}-status"),
                           spec=CalicoNodeStatusSpec(node=node, classes=classes,
                                                     update_period_seconds=args.period))
    return validate(res, source="command line")


def cmd_status(args: Any) -> int:
    from .birdsock import find_socket
    from .errors import SpecError
    from .render import render
    from .sources import collect_dumps, socket_problem
    from .status import build_status

    try:
        res = _resource_from_args(args)
    except (SpecError, InputError) as exc:
        return _fail("status", exc, EXIT_USAGE)
    dumps = args.dump4 or args.dump6
    live = args.socket4 or args.socket6 or find_socket(4) or find_socket(6)
    notes: List[str] = []
    from_bird = False
    try:
        if dumps:
            v4, v6 = collect_dumps(args.dump4 or (), args.dump6 or (), res.spec.classes, notes)
        elif live or not args.sample_fallback:
            v4, v6 = _collect(args, res.spec.classes)
            from_bird = True
            for opt, path, data in (("--socket4", args.socket4, v4),
                                    ("--socket6", args.socket6, v6)):
                if path and not data.reachable:
                    why = socket_problem(path) or data.unreachable
                    notes.append(f"{opt} {path}: {why} (IPv{data.family} reported NotReady)")
        else:
            print("nodestatus: no BIRD control socket found (looked for "
                  "/var/run/calico/bird{,6}.ctl and /var/run/bird/bird{,6}.ctl); showing the "
                  f"bundled sample node capture ({SAMPLES})", file=sys.stderr)
            v4, v6 = collect_dumps(sorted(str(p) for p in SAMPLES.glob("v4/*.raw")),
                                   sorted(str(p) for p in SAMPLES.glob("v6/*.raw")),
                                   res.spec.classes, notes)
    except InputError as exc:
        return _fail("status", exc, EXIT_USAGE)
    except NodeStatusError as exc:         # BIRD failed (BirdError), or no BIRD to ask
        return _fail("status", exc, EXIT_PROBLEM)
    for note in notes:
        print(f"nodestatus status: warning: {note}", file=sys.stderr)
    full = build_status(res, v4, v6)
    fib = None
    if args.output == "wide" and from_bird and (v4.reachable or v6.reachable):
        fib = _fib_summary(v4, v6, args.netns)
    sys.stdout.write(render(full, args.output, v4, v6, fib_summary=fib))
    return EXIT_OK


def _fib_summary(v4: Any, v6: Any, netns: Optional[str] = None) -> str:
    """One line for `status -o wide` when live: did BIRD's routes reach the kernel?"""
    from .fibcheck import FibReport, check_fib
    from .render import fib_summary_line

    report = FibReport()
    try:
        for data in (v4, v6):
            if data.reachable and data.source:
                part = check_fib(socket=data.source, families=(data.family,), netns=netns)
                report.families.extend(part.families)
    except NodeStatusError as exc:  # the status itself is done; say why the summary is missing
        return f"FIB check: not available ({type(exc).__name__}: {exc})"
    report.in_sync = all(f.in_sync for f in report.families)
    return fib_summary_line(report) if report.families else "FIB check: nothing to compare"


# --------------------------------------------------------------------------- parse


def _sample_files() -> List[str]:
    """The bundled capture of a real Calico-shaped node."""
    return [str(p) for p in sorted(SAMPLES.glob("v*/*.raw"))]


def cmd_parse(args: Any) -> int:
    from . import captures
    from .kinds import parse_only

    try:
        only = parse_only(args.only or ())
    except ValueError as exc:
        return _fail("parse", exc, EXIT_USAGE)
    if args.output == "parquet" and args.output_dir is None:
        return _fail("parse", "-o parquet writes a dataset (a folder per record kind): give "
                     "--output-dir DIR", EXIT_USAGE)
    if args.output == "arrow":
        if args.output_dir is not None:
            return _fail("parse", "-o arrow writes one stream to stdout; for files use "
                         "-o parquet --output-dir DIR", EXIT_USAGE)
        only = parse_only(args.only or ("routes",)) - {"reply_end"}
        if len(only) != 1:
            return _fail("parse", "-o arrow writes one record kind (one schema): give one "
                         "--only KIND (default routes)", EXIT_USAGE)
    if args.output in captures.TABLE_FORMATS:
        import pyarrow.parquet  # noqa: F401  (the [arrow] extra: named before any work)
    if args.sample:
        paths = args.paths + _sample_files()
    elif args.paths:
        paths = args.paths
    elif not sys.stdin.isatty():
        paths = ["-"]
    else:
        print("nodestatus parse: no paths and stdin is a terminal: parsing the bundled sample "
              f"node capture ({SAMPLES}); give files, folders or '-'", file=sys.stderr)
        paths = _sample_files()
    if args.output_dir is not None:
        if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
            return _fail("parse", f"--output-dir {args.output_dir}: exists and is not a folder",
                         EXIT_USAGE)
        try:
            os.makedirs(args.output_dir, exist_ok=True)
        except OSError as exc:
            return _fail("parse", f"--output-dir {args.output_dir}: cannot create it: "
                         f"{exc.strerror or exc}", EXIT_USAGE)
        if not os.access(args.output_dir, os.W_OK | os.X_OK):
            return _fail("parse", f"--output-dir {args.output_dir}: not writable", EXIT_USAGE)
    problems: List[str] = []
    inputs = captures.expand(paths, args.output_dir, args.output, problems)
    opts = captures.Options(fmt=args.output, only=only, command=args.command,
                            framing=args.framing, jobs=args.jobs or os.cpu_count() or 1,
                            fail_fast=args.fail_fast)
    out = None if args.output_dir else sys.stdout.buffer
    summary = captures.run(inputs, opts, out=out, err=sys.stderr)
    summary.problems[:0] = problems
    if not args.quiet:
        sys.stderr.write(summary.text())
    else:
        for p in summary.problems + summary.output_errors:
            print(p, file=sys.stderr)
    if summary.output_errors:
        return EXIT_PROBLEM
    return EXIT_USAGE if summary.problems else EXIT_OK


# --------------------------------------------------------------------------- diff


def cmd_diff(args: Any) -> int:
    from .diff import diff_files, render

    try:
        d = diff_files(args.old, args.new, command=args.command)
    except InputError as exc:
        return _fail("diff", exc, EXIT_USAGE)
    sys.stdout.buffer.write(render(d, args.output))
    sys.stdout.buffer.flush()
    return EXIT_OK if d.identical else EXIT_PROBLEM


# --------------------------------------------------------------------------- fib-check


def cmd_fib_check(args: Any) -> int:
    from .fibcheck import check_fib
    from .render import render_fib

    families = (4, 6) if args.family is None else (args.family,)
    try:
        report = check_fib(socket=args.socket, routes_file=args.routes, netns=args.netns,
                           table=args.table, kernel_json=args.kernel_json or (),
                           families=families, connect_timeout=args.timeout,
                           idle_timeout=args.idle_timeout, deadline=args.deadline)
    except InputError as exc:
        return _fail("fib-check", exc, EXIT_USAGE)
    except NodeStatusError as exc:     # BIRD, the kernel, or no BIRD at all
        return _fail("fib-check", exc, EXIT_PROBLEM)
    if not report.families:
        return _fail("fib-check", "nothing to compare: no BIRD kernel protocol exports to a "
                     "family that was checked", EXIT_PROBLEM)
    sys.stdout.write(render_fib(report, args.output))
    return EXIT_OK if report.in_sync else EXIT_PROBLEM


# --------------------------------------------------------------------------- agent

DATASTORES = ("kubernetes", "etcdv3")


def _make_sink(args, datastore: str, selector):
    """The datastore sink. A missing client library raises ModuleNotFoundError, which
    ``main`` turns into the ``pip install 'nodestatus[...]'`` line."""
    if datastore == "etcdv3":
        from .sinks.etcd import EtcdSink

        return EtcdSink(args.etcd_endpoints or None, ca_cert_file=args.etcd_ca_cert_file,
                        cert_file=args.etcd_cert_file, key_file=args.etcd_key_file)
    from .sinks.kube import KubeSink

    return KubeSink(kubeconfig=args.kubeconfig, selector=selector)


def _agent_usage(args) -> Optional[str]:
    """What is wrong with the agent's arguments (one line), or None."""
    datastore = args.datastore or os.environ.get("DATASTORE_TYPE") or "kubernetes"
    if datastore not in DATASTORES:
        given = "--datastore" if args.datastore else "$DATASTORE_TYPE"
        return f"{given} must be one of {', '.join(DATASTORES)}, got {datastore!r}"
    args.datastore = datastore
    return None


@contextlib.contextmanager
def _daemon_logging(args) -> Iterator[Any]:
    """JSON (or ``--log-format text``) lines on stderr for a long-running command; yields
    the ``nodestatus`` logger. In-process callers (tests) get their handlers back."""
    import logging

    from .logformat import JsonLogFormatter, TextLogFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter() if args.log_format == "json" else
                         TextLogFormatter())
    root = logging.getLogger("nodestatus")
    saved = (root.handlers[:], root.level, root.propagate)
    root.handlers[:] = [handler]
    root.setLevel(args.log_level.upper())
    root.propagate = False                      # one line per record, ours
    try:
        yield root
    finally:
        root.handlers[:], root.level, root.propagate = saved


class _Listeners:
    """The HTTP listeners of a long-running command: one per address, so ``/healthz``
    and ``/metrics`` share a port when their options name the same one."""

    def __init__(self) -> None:
        self.by_address: Dict[Tuple[str, int], Any] = {}
        self.options: Dict[Tuple[str, int], str] = {}

    def add(self, option: str, text: str) -> Any:
        """The listener for ``text`` (HOST:PORT); ValueError names ``option``."""
        from .listener import Listener, parse_address

        try:
            address = parse_address(text)
        except ValueError as exc:
            raise ValueError(f"{option}: {exc}") from None
        if address not in self.by_address:
            self.by_address[address] = Listener(*address)
            self.options[address] = f"{option} {text}"
        return self.by_address[address]

    def start(self) -> Optional[str]:
        """Start them all; the one line saying which address cannot be used, or None."""
        for address, listener in self.by_address.items():
            try:
                listener.start()
            except OSError as exc:
                self.close()
                option, _, text = self.options[address].partition(" ")
                return f"{option}: cannot listen on {text}: {exc.strerror or exc}"
        return None

    def close(self) -> None:
        for listener in self.by_address.values():
            listener.close()


def _metric_loops(args, metrics, collect_bird: bool = True) -> List[Any]:
    """The threads that fill ``metrics``: BIRD every ``--period``/``--metrics-period``
    seconds, and the FIB check every ``--fib-check-period`` seconds when set."""
    from .metrics import ALL_CLASSES, CollectionLoop, FibLoop

    loops: List[Any] = []
    if collect_bird:
        loops.append(CollectionLoop(metrics, lambda: _collect(args, ALL_CLASSES)))
    if args.fib_check_period:
        loops.append(FibLoop(metrics, args.fib_check_period, (4, 6),
                             lambda fam: _fib_check_family(args, metrics, fam)))
    return [loop.start() for loop in loops]


def _fib_check_family(args, metrics, family: int) -> Any:
    """One family's FIB check for the metrics; None when no daemon serves the family."""
    from .birdsock import find_socket
    from .fibcheck import check_fib
    from .sources import socket_problem
    from .structs import is_bird2

    path = (args.socket4 if family == 4 else args.socket6) or find_socket(family)
    if family == 6 and not path and metrics.last is not None:
        v4 = metrics.last.families[0]
        if v4.up and is_bird2(v4.version):            # BIRD 2 answers for both families
            path = args.socket4 or find_socket(4)
    if not path or socket_problem(path):
        return None
    return check_fib(socket=path, netns=args.netns, families=(family,),
                     connect_timeout=args.timeout, idle_timeout=args.idle_timeout,
                     deadline=args.deadline)


def cmd_agent(args) -> int:
    from .errors import SelectorError
    from .sinks.selector import Selector

    def usage(message: str) -> int:
        return _fail("agent", message, EXIT_USAGE)

    problem = _agent_usage(args)
    if problem:
        return usage(problem)
    node = (args.node or os.environ.get("NODENAME") or "").strip()
    if not node:
        return usage("--node or $NODENAME is required")
    try:
        selector = Selector.parse(args.selector)
    except SelectorError as exc:
        return usage(f"--selector: {exc}")
    listeners = _Listeners()
    try:
        health = listeners.add("--health-addr", args.health_addr) if args.health_addr \
            else None
        scrape = listeners.add("--metrics-addr", args.metrics_addr) if args.metrics_addr \
            else None
    except ValueError as exc:
        return usage(str(exc))
    with _daemon_logging(args) as root:
        return _run_agent(args, node, selector, listeners, health, scrape, root)


def _run_agent(args, node: str, selector, listeners: _Listeners, health, scrape,
               root) -> int:
    import signal

    from .agent import Agent
    from .errors import SinkError

    metrics = agent_metrics = None
    if scrape is not None:
        from .metrics import AgentMetrics, Metrics

        _no_created_series()
        metrics = Metrics(args.metrics_period)
        agent_metrics = AgentMetrics(metrics)
    try:
        sink = _make_sink(args, args.datastore, selector)
    except (NodeStatusError, OSError, ValueError) as exc:
        return _fail("agent", f"cannot use the {args.datastore} datastore: {exc}",
                     EXIT_USAGE)

    def collect(classes):
        return _collect(args, classes)

    # a BIRD query takes at most its deadline; the watch and the longest backoff come on
    # top: a loop silent for longer than this is stuck
    stall_after = 120.0 + args.timeout + args.deadline
    agent = Agent(sink, node, collect, selector=selector,
                  probe_every=10.0 if health is not None else None, stall_after=stall_after,
                  events=agent_metrics)
    if health is not None:
        from .listener import probe_endpoint

        health.route("/healthz", probe_endpoint(agent.liveness))
        health.route("/readyz", probe_endpoint(agent.readiness))
    if metrics is not None and agent_metrics is not None:
        agent_metrics.serve(agent)
        scrape.route("/metrics", metrics.endpoint())
    problem = listeners.start()
    if problem:
        sink.close()
        return _fail("agent", problem, EXIT_USAGE)
    loops = _metric_loops(args, metrics) if metrics is not None and not args.once else []
    previous = {sig: signal.signal(sig, lambda *_: agent.stop())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    fields = {"node": node, "datastore": args.datastore, "once": args.once}
    if selector:
        fields["selector"] = str(selector)
    if health is not None:
        fields["health_addr"] = "%s:%d" % health.address
    if scrape is not None:
        fields["metrics_addr"] = "%s:%d" % scrape.address
    root.info("agent starting", extra={"fields": fields})
    try:
        ok = agent.run(once=args.once)
    except SinkError as exc:
        root.error("datastore unavailable", extra={"fields": {"error": str(exc)}})
        return EXIT_PROBLEM
    finally:
        for loop in loops:
            loop.stop()
        sink.close()
        listeners.close()
        for sig, old in previous.items():
            signal.signal(sig, old)
    root.info("agent stopped", extra={"fields": {"writes": agent.writes,
                                                 "bird_queries": agent.bird_queries}})
    return EXIT_OK if ok else EXIT_PROBLEM     # --once: a resource not reported is an error


def _no_created_series() -> None:
    """No ``*_created`` series beside each counter and histogram: they double the
    agent's series and no dashboard reads them (process-wide: this is our own process)."""
    from prometheus_client import disable_created_metrics

    disable_created_metrics()


# --------------------------------------------------------------------------- exporter


def cmd_exporter(args) -> int:
    import signal
    import threading

    listeners = _Listeners()
    try:
        scrape = listeners.add("--listen", args.listen)
    except ValueError as exc:
        return _fail("exporter", exc, EXIT_USAGE)
    from .metrics import Metrics                # the [metrics] extra (main() says so)

    _no_created_series()
    metrics = Metrics(args.period)
    scrape.route("/metrics", metrics.endpoint())
    with _daemon_logging(args) as root:
        problem = listeners.start()
        if problem:
            return _fail("exporter", problem, EXIT_USAGE)
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set())
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        loops = _metric_loops(args, metrics)
        root.info("exporter starting", extra={"fields": {
            "listen": "%s:%d" % scrape.address, "period": args.period,
            "fib_check_period": args.fib_check_period}})
        try:
            stop.wait()
        finally:
            for loop in loops:
                loop.stop()
            listeners.close()
            for sig, old in previous.items():
                signal.signal(sig, old)
        root.info("exporter stopped")
    return EXIT_OK


# --------------------------------------------------------------------------- cluster

#: cluster.DEFAULT_PREFIX, without importing the module for --help
DEFAULT_PREFIX = "nodestatus-"


def cmd_cluster(args) -> int:
    from . import cluster
    from .errors import SinkError, SpecError
    from .sinks.selector import Selector

    problem = _agent_usage(args)
    if problem:
        return _fail("cluster", problem, EXIT_USAGE)
    request = args.cluster_cmd == "request"
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if request else []
    if request:
        try:
            cluster.check_request(classes, args.period, args.prefix)
        except SpecError as exc:
            option = {"metadata.name": "--prefix", "spec.classes": "--classes"}.get(
                exc.field, "--period")
            return _fail("cluster request", f"{option}: {exc}", EXIT_USAGE)
    try:
        sink = _make_sink(args, args.datastore, Selector())
    except (NodeStatusError, OSError, ValueError) as exc:
        return _fail("cluster", f"cannot use the {args.datastore} datastore: {exc}",
                     EXIT_USAGE)
    try:
        if request:
            return _cluster_request(args, sink, classes)
        return _cluster_view(args, sink)
    except SinkError as exc:
        return _fail("cluster request" if request else "cluster", exc, EXIT_PROBLEM)
    finally:
        sink.close()


def _cluster_view(args, sink) -> int:
    from .cluster import build_view, render_view
    from .errors import SinkError

    items, _ = sink.list()
    try:
        nodes = sink.list_nodes()
    except SinkError as exc:          # addresses help; the statuses are the view
        print(f"nodestatus cluster: warning: cannot list the nodes ({exc}): nodes without "
              "a CalicoNodeStatus are not shown, peers are matched by router ID",
              file=sys.stderr)
        nodes = []
    view = build_view(items, nodes)
    sys.stdout.write(render_view(view, args.output))
    return EXIT_PROBLEM if view.problems else EXIT_OK


def _cluster_request(args, sink, classes: List[str]) -> int:
    from . import cluster

    if args.delete:
        actions = cluster.delete_requested(sink, args.prefix)
    else:
        nodes = sink.list_nodes()
        actions = cluster.request(sink, nodes, classes, args.period,
                                  cluster.DEFAULT_PREFIX if args.prefix is None
                                  else args.prefix)
    for action in actions:
        print(action.line())
    if not actions:
        print("nothing to do" if args.delete else "no nodes in the datastore")
    return EXIT_OK


# --------------------------------------------------------------------------- arguments


def _live_options(p: argparse.ArgumentParser, idle_default: float) -> None:
    from .sources import DEFAULT_DEADLINE

    p.add_argument("--timeout", type=_seconds, default=5.0, metavar="S",
                   help="seconds to connect to BIRD and read its banner (default 5)")
    p.add_argument("--idle-timeout", type=_seconds, default=idle_default, metavar="S",
                   help="longest silence while BIRD streams a reply, in seconds "
                        f"(default {idle_default:g})")
    p.add_argument("--deadline", type=_seconds, default=DEFAULT_DEADLINE, metavar="S",
                   help="seconds for the whole query of one daemon, however steadily it "
                        f"trickles (default {DEFAULT_DEADLINE:g}: a million-route table on "
                        "BIRD 1.6 takes up to 100)")


def build_parser() -> argparse.ArgumentParser:
    from .captures import FORMATS

    ap = _Parser(prog="nodestatus", description=DESCRIPTION,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"nodestatus {__version__}",
                    help="print the version and exit")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND",
                            parser_class=_Parser)

    s = sub.add_parser("status", help="this node's CalicoNodeStatus from BIRD (live or captures)",
                       description="Build this node's CalicoNodeStatus from its BIRD daemons "
                       "(live control sockets) or from captured replies (--dump4/--dump6). "
                       "Exit 0 done; 1 BIRD failed; 2 bad arguments, spec or capture.")
    s.add_argument("--node", help="node name (default: $NODENAME, else the host name)")
    s.add_argument("--name", help="resource name when not read with -f (default NODE-status)")
    s.add_argument("--classes", help="comma-separated: Agent,BGP,Routes (default: all)")
    s.add_argument("--period", type=_int_in(0, 86400), default=0, metavar="S",
                   help="spec.updatePeriodSeconds when not read with -f, 0..86400 (default 0)")
    s.add_argument("--socket4", metavar="PATH",
                   help="IPv4 BIRD control socket (default: Calico's, then Debian's)")
    s.add_argument("--socket6", metavar="PATH", help="IPv6 BIRD control socket")
    s.add_argument("--dump4", nargs="+", metavar="FILE",
                   help="captured IPv4 replies instead of a live socket (any framing, any "
                        "order, gzip/bzip2/xz/zstd, '-' or a FIFO; every file must be usable)")
    s.add_argument("--dump6", nargs="+", metavar="FILE", help="captured IPv6 replies")
    s.add_argument("-f", "--file", metavar="FILE",
                   help="a CalicoNodeStatus resource (YAML or JSON, '-' = stdin)")
    s.add_argument("-o", "--output", choices=("yaml", "json", "wide"), default="yaml",
                   help="output format (default yaml; wide: calicoctl-style tables)")
    _live_options(s, 30.0)
    s.add_argument("--netns", help="network namespace whose kernel table BIRD writes, for the "
                   "FIB summary of -o wide (default: this one)")
    s.add_argument("--sample-fallback", action="store_true",
                   help="with no socket found and no dumps, use the bundled sample capture")
    s.set_defaults(func=cmd_status)

    p = sub.add_parser("parse", help="parse BIRD captures into records (NDJSON by default)",
                       description="Parse capture files (BIRD output in any framing, `ip -j "
                       "route` JSON; gzip/bzip2/xz/zstd read transparently) into records. "
                       "With no paths, stdin is read when it is not a terminal. A summary "
                       "and every problem (file:line: message) go to stderr. Exit 0 done; "
                       "1 output could not be written; 2 bad arguments or a problem in any "
                       "input (what parsed before it is still written).")
    p.add_argument("paths", nargs="*", help="files or folders (recursive; '-' = stdin)")
    p.add_argument("-o", "--output", "--format", dest="output",
                   choices=FORMATS, default="ndjson",
                   help="record format (default ndjson; msgpack: a stream of maps; "
                   "parquet: a dataset under --output-dir, DIR/<kind>/<input>.parquet; "
                   "arrow: an Arrow IPC stream of one kind on stdout). Fields at their "
                   "default are left out of ndjson/json/msgpack/yaml")
    p.add_argument("--output-dir", metavar="DIR",
                   help="one output file per input under DIR instead of stdout")
    p.add_argument("--sample", action="store_true",
                   help="parse the bundled sample node capture (besides any paths)")
    p.add_argument("--only", action="append", metavar="KINDS",
                   help="comma-separated: routes, protocols, status, counts, errors, "
                   "unsupported, banners, kernel, replies (reply ends; never by default)")
    p.add_argument("-j", "--jobs", type=_int_in(1, 1024), default=None, metavar="N",
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
                       "identical, 1 different, 2 bad arguments or unusable captures.")
    d.add_argument("old", help="the earlier capture (path, '-' or FIFO; compressed or not)")
    d.add_argument("new", help="the later capture")
    d.add_argument("-o", "--output", choices=("ndjson", "json", "wide"), default="wide",
                   help="output format (default wide: one line per change)")
    d.add_argument("--command", default=None, help="the BIRD command of both captures")
    d.set_defaults(func=cmd_diff)

    f = sub.add_parser("fib-check", help="BIRD's exported routes against the kernel's table",
                       description="Compare the routes BIRD's kernel protocol exports with "
                       "the kernel's routing table (netlink, or captured `ip -j route show`). "
                       "Exit 0 in sync; 1 differences (or routes BIRD marks `!`), or BIRD / "
                       "the kernel failed; 2 bad arguments or an unusable capture.")
    src = f.add_mutually_exclusive_group()
    src.add_argument("--socket", metavar="PATH", help="BIRD control socket (default: per "
                     "family, Calico's then Debian's path)")
    src.add_argument("--routes", metavar="FILE", help="a captured `show route [all]` / `show "
                     "route export <kernel protocol>` reply instead of a live BIRD")
    f.add_argument("--netns", help="read the kernel table inside this network namespace")
    f.add_argument("--table", type=_int_in(0, 0xFFFFFFFF), default=254, metavar="N",
                   help="kernel table BIRD writes (default 254, main)")
    f.add_argument("--kernel-json", nargs="+", metavar="FILE",
                   help="captured `ip -j route show` (and `ip -6 -j …`) instead of netlink")
    f.add_argument("--family", type=int, choices=(4, 6), help="check one family only")
    _live_options(f, 120.0)
    f.add_argument("-o", "--output", choices=("json", "yaml", "wide"), default="wide",
                   help="output format (default wide: a summary, one line per difference)")
    f.set_defaults(func=cmd_fib_check)

    a = sub.add_parser(
        "agent", help="keep this node's CalicoNodeStatus resources filled",
        description="Fill the status of every CalicoNodeStatus whose spec.node is this "
        "node, in Kubernetes (Calico's CRD) or etcd v3, from the node's BIRD sockets; "
        "report on create and spec change, then every updatePeriodSeconds. Beside "
        "calico-node (Calico >= 3.22 fills these resources itself) give the agent its own "
        "resources with --selector. Exit codes (--once): 0 every resource of this node "
        "reported, 1 a datastore or BIRD error or a resource not reported, 2 bad arguments.")
    a.add_argument("--node", help="this node's name, as in spec.node (default: $NODENAME, as "
                   "calico-node)")
    _datastore_options(a)
    a.add_argument("--selector", default=None, metavar="LABELSELECTOR",
                   help="serve only resources whose labels match, in Kubernetes syntax "
                   "(e.g. 'reporter=nodestatus', 'tier in (a,b)', '!calico'); "
                   "default: every resource of this node")
    a.add_argument("--once", action="store_true",
                   help="report every resource of this node once and exit (1 if any was "
                   "not reported)")
    a.add_argument("--health-addr", default=None, metavar="HOST:PORT",
                   help="serve /healthz (the loop is alive) and /readyz (the datastore and a "
                   "BIRD socket answered lately) over HTTP here, e.g. 127.0.0.1:9180")
    a.add_argument("--metrics-addr", default=None, metavar="HOST:PORT",
                   help="serve Prometheus metrics on /metrics here (may be the --health-addr "
                   "port), e.g. 127.0.0.1:9180; needs the [metrics] extra")
    _metric_options(a, "--metrics-period")
    a.add_argument("--socket4", metavar="PATH",
                   help="IPv4 BIRD control socket (default: Calico's, then Debian's)")
    a.add_argument("--socket6", metavar="PATH", help="IPv6 BIRD control socket (default: Calico's, then "
                   "Debian's)")
    _live_options(a, 30.0)
    _log_options(a)
    a.set_defaults(func=cmd_agent)

    e = sub.add_parser(
        "exporter", help="Prometheus metrics of BIRD (sessions, routes, FIB drift)",
        description="Serve Prometheus metrics of this node's BIRD daemons on /metrics: "
        "daemon state, BGP sessions, routes per protocol and per type, routes BIRD marks "
        "`!`, and (with --fib-check-period) the FIB check's drift. No datastore: for any "
        "BIRD, Calico's or not. Scrapes never ask BIRD: a thread collects every --period "
        "seconds. Exit 0 stopped by SIGTERM/SIGINT; 2 bad arguments or the address cannot "
        "be used (BIRD failing is a metric, not an exit).")
    e.add_argument("--listen", required=True, metavar="HOST:PORT",
                   help="where to serve /metrics, e.g. 127.0.0.1:9324 or :9324")
    e.add_argument("--socket4", metavar="PATH",
                   help="IPv4 BIRD control socket (default: Calico's, then Debian's)")
    e.add_argument("--socket6", metavar="PATH",
                   help="IPv6 BIRD control socket (default: Calico's, then Debian's)")
    _metric_options(e, "--period")
    _live_options(e, 30.0)
    _log_options(e)
    e.set_defaults(func=cmd_exporter)

    c = sub.add_parser(
        "cluster", help="every node's CalicoNodeStatus in one view, with the problems",
        description="Read every CalicoNodeStatus in the datastore and print one row per "
        "node (BIRD per family, sessions established of configured, routes, the status's "
        "age) and the problems found across nodes: asymmetric sessions, stale or missing "
        "statuses, NotReady daemons, blocks missing from a peer's routes. `cluster request` "
        "asks for one resource per node. Exit 0 no problem; 1 a problem found or the "
        "datastore failed; 2 bad arguments.")
    _datastore_options(c)
    c.add_argument("-o", "--output", choices=("wide", "json", "yaml"), default="wide",
                   help="output format (default wide: a table, then one line per problem)")
    c.set_defaults(func=cmd_cluster, cluster_cmd=None)
    csub = c.add_subparsers(dest="cluster_cmd", metavar="request", parser_class=_Parser)
    r = csub.add_parser(
        "request", help="create or update one CalicoNodeStatus per node",
        description="Create, or bring up to date, one CalicoNodeStatus per node the "
        "datastore knows (Kubernetes Nodes; Calico Node resources in etcd), named PREFIX + "
        "node and labelled app.kubernetes.io/managed-by=nodestatus-cluster-request; a "
        "resource of that name without the label is never changed. Those made for nodes "
        "that are gone are deleted. --delete removes every resource it made. Exit 0 done; "
        "1 the datastore failed; 2 bad arguments.")
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--all-nodes", action="store_true",
                      help="one resource for every node the datastore knows")
    what.add_argument("--delete", action="store_true",
                      help="delete every resource `cluster request` made (with --prefix: "
                      "those whose names start with it)")
    r.add_argument("--classes", default="Agent,BGP,Routes",
                   help="comma-separated: Agent,BGP,Routes (default: all)")
    r.add_argument("--period", type=_int_in(0, 86400), default=60, metavar="S",
                   help="spec.updatePeriodSeconds, 0..86400 (default 60)")
    r.add_argument("--prefix", default=None, metavar="NAME",
                   help=f"resource name prefix (default {DEFAULT_PREFIX!r}: "
                   f"{DEFAULT_PREFIX}NODE)")
    _datastore_options(r, under=True)
    return ap


def _datastore_options(p: argparse.ArgumentParser, under: bool = False) -> None:
    """Where the resources live. ``under``: a sub-command's copy, whose absent options
    leave what the parent command's parsed alone."""
    keep = {"default": argparse.SUPPRESS} if under else {"default": None}
    p.add_argument("--datastore", metavar="{kubernetes,etcdv3}", **keep,
                   help="where the resources live (default: $DATASTORE_TYPE, else kubernetes)")
    p.add_argument("--etcd-endpoints", metavar="URLS", **keep,
                   help="comma-separated etcd URLs (default: $ETCD_ENDPOINTS, else "
                   "http://127.0.0.1:2379)")
    p.add_argument("--etcd-ca-cert-file", metavar="FILE", **keep,
                   help="CA bundle for etcd's TLS (default: $ETCD_CA_CERT_FILE)")
    p.add_argument("--etcd-cert-file", metavar="FILE", **keep,
                   help="client certificate for etcd (default: $ETCD_CERT_FILE)")
    p.add_argument("--etcd-key-file", metavar="FILE", **keep,
                   help="client key for etcd (default: $ETCD_KEY_FILE)")
    p.add_argument("--kubeconfig", metavar="FILE", **keep,
                   help="kubeconfig file (default: the pod's service account, else "
                   "$KUBECONFIG / ~/.kube/config)")


def _metric_options(p: argparse.ArgumentParser, period_flag: str) -> None:
    p.add_argument(period_flag, dest="metrics_period" if period_flag != "--period" else
                   "period", type=_seconds, default=30.0, metavar="S",
                   help="seconds between collections from BIRD for the metrics (default 30; "
                   "scrapes in between show the last one)")
    p.add_argument("--fib-check-period", type=_seconds, default=None, metavar="S",
                   help="also check BIRD's exported routes against the kernel table every S "
                   "seconds (off by default: at 1M routes BIRD 1.6 needs minutes to print "
                   "its table)")
    p.add_argument("--netns", default=None, metavar="NAME",
                   help="network namespace whose kernel table BIRD writes, for the FIB check "
                   "(default: this one)")


def _log_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-format", choices=("json", "text"), default="json",
                   help="json: one object per line (default); text: one line with "
                   "key=value fields")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="least severe level logged (default info)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:            # --help / --version: 0; errors: 2 (printed already)
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
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
    except OSError as exc:               # stdout itself failed (a full disk, a closed file)
        return _fail(args.cmd, f"cannot write the output: {exc.strerror or exc}",
                     EXIT_PROBLEM)


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
