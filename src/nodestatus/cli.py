"""Command line: ``nodestatus parse`` (captures -> records). Thin: argument handling and
output only; parsing is ``records.iter_records``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import msgspec

from . import __version__
from .errors import ParseError
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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nodestatus", description=__doc__)
    ap.add_argument("--version", action="version", version=f"nodestatus {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
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
