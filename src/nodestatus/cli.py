"""Command line: ``nodestatus status`` (a node's CalicoNodeStatus, live or from captures)
and ``nodestatus parse`` (captures -> records). Thin: arguments, exit codes and output;
the work is in ``sources``, ``status`` and ``records``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import msgspec

from . import __version__
from .errors import NodeStatusError, ParseError
from .records import Parser, open_capture
from .structs import ReplyEnd

SAMPLES = Path(__file__).parent / "samples" / "calico-node1"
EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def _sample_files() -> List[Path]:
    """The bundled capture of a real Calico-shaped node: what `parse` shows by default."""
    return sorted(SAMPLES.glob("v*/*.raw"))


def _expand(paths: Sequence[str]) -> Iterator[Path]:
    for p in paths:
        path = Path(p)
        if path.is_dir():
            yield from sorted(x for x in path.rglob("*") if x.is_file())
        else:
            yield path


def _parse_one(path: Path, args, write) -> Optional[str]:
    """Stream one file's records to `write`; returns a problem text or None."""
    parser = Parser(framing=args.framing, command=args.command, reply_markers=True)
    reply = 0
    source = str(path)

    def emit(recs):
        nonlocal reply
        for rec in recs:
            if isinstance(rec, ReplyEnd):
                reply = rec.index + 1
                continue
            write(source, reply, rec)

    try:
        f = sys.stdin.buffer if source == "-" else open_capture(path)
        with f:
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                emit(parser.feed(chunk))
            emit(parser.close())
    except ParseError as exc:
        emit(exc.partial)
        exc.with_source(source)
        return f"{source}:{exc.line}: {exc.reason} (byte {exc.offset})"
    except BrokenPipeError:
        raise
    except OSError as exc:
        return f"{source}: {exc.strerror or exc}"
    return None


def cmd_parse(args) -> int:
    paths = list(_expand(args.paths)) if args.paths else _sample_files()
    enc = msgspec.json.Encoder()
    out = sys.stdout.buffer
    collected = []

    def write(source, reply, rec):
        if args.output == "json":
            collected.append({"source": source, "reply": reply, "record": rec})
        else:
            out.write(enc.encode({"source": source, "reply": reply, "record": rec}))
            out.write(b"\n")

    problems = []
    for path in paths:
        problem = _parse_one(path, args, write)
        if problem:
            problems.append(problem)
    if args.output == "json":
        out.write(msgspec.json.format(enc.encode(collected), indent=2))
        out.write(b"\n")
    out.flush()
    for p in problems:
        print(p, file=sys.stderr)
    return EXIT_PROBLEM if problems else EXIT_OK


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
    try:
        if dumps:
            v4, v6 = collect_dumps(args.dump4 or (), args.dump6 or (), res.spec.classes)
        elif live or not args.sample_fallback:
            v4, v6 = collect_live(res.spec.classes, args.socket4, args.socket6,
                                  connect_timeout=args.timeout, idle_timeout=args.idle_timeout)
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
    sys.stdout.write(render(full, args.output, v4, v6))
    return EXIT_OK


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
    s.add_argument("--sample-fallback", action="store_true",
                   help="with no socket found and no dumps, use the bundled sample capture")
    s.set_defaults(func=cmd_status)
    p = sub.add_parser("parse", help="parse BIRD captures into records (NDJSON by default)")
    p.add_argument("paths", nargs="*", help="files or folders ('-' = stdin); default: the "
                   "bundled sample node capture")
    p.add_argument("-o", "--output", choices=("ndjson", "json"), default="ndjson")
    p.add_argument("--framing", choices=("raw", "birdc-v", "birdc"), default=None,
                   help="force the framing instead of detecting it")
    p.add_argument("--command", default=None, help="the BIRD command that produced the input")
    p.set_defaults(func=cmd_parse)
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


if __name__ == "__main__":
    sys.exit(main())
