"""Bad inputs and bad options across every command, table-driven: each case asserts the exit
code of the contract (0 done, 1 BIRD/datastore/differences, 2 bad arguments or input), one
line on stderr naming the file or option, no traceback, and (where the command writes
records) that what parsed before the fault is still written.

Everything goes through ``nodestatus.cli.main`` in-process, except the cases that need a
real stdin, pipe or process substitution, which run ``python -m nodestatus`` in a shell.
"""
from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple

import pytest

import nodestatus
from nodestatus.cli import main
from nodestatus.errors import InputError, ParseError, TruncatedReplyError

DATA = Path(__file__).resolve().parent.parent / "data" / "captures"
LAB = DATA / "calico-lab-node1"
V168 = DATA / "1.6.8"
STATUS4 = str(LAB / "v4" / "show_status.raw")
PROTOS4 = str(LAB / "v4" / "show_protocols_all.raw")
ROUTES4 = LAB / "v4" / "show_route.raw"


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Dict[str, str]:
    """Every kind of bad file, by name."""
    d = tmp_path_factory.mktemp("bad")
    routes = ROUTES4.read_bytes()
    files = {
        "garbage.bin": bytes(range(256)) * 4,
        "empty.txt": b"",
        "blank.txt": b"\n\n  \n",
        "cut.raw": routes[:150],
        "cut.gz": gzip.compress(routes)[:60],
        "corrupt.gz": gzip.compress(routes)[:20] + b"\xff" * 40 + gzip.compress(routes)[60:],
        "corrupt.xz": lzma.compress(routes)[:30] + b"\x00\x01" * 30,
        "trailing.bz2": bz2.compress(routes) + b"not another stream",
        "kernel.json": (LAB / "kernel4.json").read_bytes(),
        "interfaces.raw": (V168 / "show_interfaces.raw.txt").read_bytes(),
        "iproute.txt": b"default via 10.0.0.1 dev eth0 proto dhcp metric 100\n",
        "json-garbage.json": b"[{\"dst\": \"10.0.0.0/8\", \"metric\": \"x\"}]",
        "json-cut.json": (LAB / "kernel4.json").read_bytes()[:90],
        "json-types.json": b"[{\"dst\": 5}]",
        "json-not-array.json": b"{\"dst\": \"10.0.0.0/8\"}",
        "bird6-routes.raw": (LAB / "v6" / "show_route.raw").read_bytes(),
        "resource-bad.yaml": b"apiVersion: projectcalico.org/v3\nkind: CalicoNodeStatus\n"
                             b"metadata: {name: x}\nspec: {node: n, classes: [Foo], "
                             b"updatePeriodSeconds: 1}\n",
        "protocols-only.raw": (LAB / "v4" / "show_protocols_all.raw").read_bytes(),
    }
    out = {}
    for name, data in files.items():
        (d / name).write_bytes(data)
        out[name] = str(d / name)
    out["missing"] = str(d / "missing.raw")
    out["folder"] = str(d)
    out["unreadable"] = "/proc/self/mem"          # open() works, read() fails (EIO)
    (d / "occupied").write_text("a file where a folder is wanted")
    out["occupied"] = str(d / "occupied")
    return out


class Case(NamedTuple):
    name: str
    argv: Callable[[Dict[str, str]], List[str]]
    rc: int
    names: Callable[[Dict[str, str]], str]    # what the stderr line must mention
    text: str = ""                             # and what it must say


def _bad_kernel_json(name: str, bad: str, text: str = "") -> Case:
    """fib-check of a good capture against the bad file ``bad`` as ``--kernel-json``."""
    return Case(name, lambda b: ["fib-check", "--routes", str(ROUTES4), "--kernel-json", b[bad]],
                2, lambda b: b[bad], text)


S = ["status", "--node", "n"]
CASES = [
    # status --dump*: any unusable file is bad input (2), and no status is printed
    Case("status missing file", lambda b: S + ["--dump4", STATUS4, b["missing"]], 2,
         lambda b: b["missing"], "No such file"),
    Case("status a folder", lambda b: S + ["--dump4", STATUS4, b["folder"]], 2,
         lambda b: b["folder"], "directory"),
    Case("status garbage", lambda b: S + ["--dump4", STATUS4, b["garbage.bin"]], 2,
         lambda b: b["garbage.bin"], "binary data"),
    Case("status empty", lambda b: S + ["--dump4", STATUS4, b["empty.txt"]], 2,
         lambda b: b["empty.txt"], "empty"),
    Case("status blank", lambda b: S + ["--dump4", STATUS4, b["blank.txt"]], 2,
         lambda b: b["blank.txt"], "empty"),
    Case("status cut reply", lambda b: S + ["--dump4", STATUS4, b["cut.raw"]], 2,
         lambda b: b["cut.raw"], "truncated"),
    Case("status cut gzip", lambda b: S + ["--dump4", STATUS4, b["cut.gz"]], 2,
         lambda b: b["cut.gz"], "cut short"),
    Case("status corrupt gzip", lambda b: S + ["--dump4", STATUS4, b["corrupt.gz"]], 2,
         lambda b: b["corrupt.gz"], "broken gzip data"),
    Case("status corrupt xz", lambda b: S + ["--dump4", STATUS4, b["corrupt.xz"]], 2,
         lambda b: b["corrupt.xz"], "broken xz data"),
    Case("status trailing junk", lambda b: S + ["--dump4", STATUS4, b["trailing.bz2"]], 2,
         lambda b: b["trailing.bz2"], "not another stream"),
    Case("status unreadable", lambda b: S + ["--dump4", STATUS4, b["unreadable"]], 2,
         lambda b: b["unreadable"], "read failed"),
    Case("status ip json", lambda b: S + ["--dump4", STATUS4, b["kernel.json"]], 2,
         lambda b: b["kernel.json"], "`ip -j route` capture"),
    Case("status nothing used", lambda b: S + ["--dump4", STATUS4, b["interfaces.raw"]], 2,
         lambda b: b["interfaces.raw"], "not built from"),
    Case("status other family", lambda b: S + ["--dump4", STATUS4, b["bird6-routes.raw"]], 2,
         lambda b: b["bird6-routes.raw"], "holds IPv6 routes"),
    Case("status no show status", lambda b: S + ["--dump4", PROTOS4], 2,
         lambda b: PROTOS4, "no `show status`"),
    Case("status garbage, BGP only", lambda b: S + ["--classes", "BGP,Routes", "--dump4",
                                                    b["garbage.bin"]], 2,
         lambda b: b["garbage.bin"], "binary data"),
    Case("status bad resource", lambda b: S + ["-f", b["resource-bad.yaml"], "--dump4", STATUS4],
         2, lambda b: b["resource-bad.yaml"], "spec.classes"),
    Case("status missing resource", lambda b: S + ["-f", b["missing"], "--dump4", STATUS4], 2,
         lambda b: b["missing"], "No such file"),
    Case("status --timeout -1", lambda b: S + ["--timeout", "-1"], 2, lambda b: "--timeout",
         "above 0"),
    Case("status --timeout nan", lambda b: S + ["--timeout", "nan"], 2, lambda b: "--timeout"),
    Case("status --idle-timeout 0", lambda b: S + ["--idle-timeout", "0"], 2,
         lambda b: "--idle-timeout"),
    Case("status --idle-timeout -5", lambda b: S + ["--idle-timeout", "-5"], 2,
         lambda b: "--idle-timeout"),
    Case("status --deadline inf", lambda b: S + ["--deadline", "inf"], 2,
         lambda b: "--deadline"),
    Case("status --period 86401", lambda b: S + ["--period", "86401"], 2,
         lambda b: "--period"),
    Case("status --period abc", lambda b: S + ["--period", "abc"], 2, lambda b: "--period"),
    Case("status --classes Foo", lambda b: S + ["--classes", "BGP,Foo", "--dump4", STATUS4], 2,
         lambda b: "spec.classes"),
    Case("status -o bogus", lambda b: S + ["-o", "bogus"], 2, lambda b: "-o/--output"),
    # parse: a problem in any input is 2; what parsed is written
    Case("parse missing", lambda b: ["parse", "-q", STATUS4, b["missing"]], 2,
         lambda b: b["missing"], "No such file"),
    Case("parse cut", lambda b: ["parse", "-q", b["cut.raw"]], 2, lambda b: b["cut.raw"],
         "truncated"),
    Case("parse cut gzip", lambda b: ["parse", "-q", b["cut.gz"]], 2, lambda b: b["cut.gz"],
         "cut short"),
    Case("parse cut ip -j json", lambda b: ["parse", "-q", b["json-cut.json"]], 2,
         lambda b: b["json-cut.json"], "`ip -j route` JSON"),
    Case("parse --output-dir on a file", lambda b: ["parse", "--output-dir", b["occupied"],
                                                    STATUS4], 2,
         lambda b: b["occupied"], "not a folder"),
    Case("parse --output-dir unwritable", lambda b: ["parse", "--output-dir",
                                                     "/proc/nodestatus-out", STATUS4], 2,
         lambda b: "/proc/nodestatus-out"),
    Case("parse --jobs 0", lambda b: ["parse", "--jobs", "0", STATUS4], 2, lambda b: "--jobs"),
    Case("parse --only bogus", lambda b: ["parse", "--only", "bogus", STATUS4], 2,
         lambda b: "bogus"),
    Case("parse -o parquet to stdout", lambda b: ["parse", "-o", "parquet", STATUS4], 2,
         lambda b: "--output-dir", "-o parquet"),
    Case("parse -o arrow to a folder", lambda b: ["parse", "-o", "arrow", "--output-dir",
                                                  b["folder"], STATUS4], 2,
         lambda b: "-o arrow", "stdout"),
    Case("parse -o arrow two kinds", lambda b: ["parse", "-o", "arrow", "--only",
                                                "routes,protocols", STATUS4], 2,
         lambda b: "--only", "one record kind"),
    Case("parse -o parquet cut", lambda b: ["parse", "-q", "-o", "parquet", "--output-dir",
                                            b["folder"] + "/pq", b["cut.raw"]], 2,
         lambda b: b["cut.raw"], "truncated"),
    # diff: unusable captures are 2, differences 1
    Case("diff missing", lambda b: ["diff", str(ROUTES4), b["missing"]], 2,
         lambda b: b["missing"]),
    Case("diff garbage", lambda b: ["diff", b["garbage.bin"], str(ROUTES4)], 2,
         lambda b: b["garbage.bin"], "binary"),
    Case("diff cut", lambda b: ["diff", str(ROUTES4), b["cut.raw"]], 2,
         lambda b: b["cut.raw"], "truncated"),
    Case("diff different kinds", lambda b: ["diff", str(ROUTES4), PROTOS4], 2,
         lambda b: PROTOS4, "different kinds"),
    Case("diff nothing to compare", lambda b: ["diff", STATUS4, STATUS4], 2,
         lambda b: STATUS4, "no routes or protocols"),
    # fib-check: a bad capture is 2, never "differences" (1)
    _bad_kernel_json("fib-check garbage json", "garbage.bin"),
    _bad_kernel_json("fib-check cut json", "json-cut.json"),
    _bad_kernel_json("fib-check wrong types", "json-types.json", "Expected `str`"),
    _bad_kernel_json("fib-check bad metric", "json-garbage.json"),
    _bad_kernel_json("fib-check not an array", "json-not-array.json"),
    Case("fib-check BIRD text as json", lambda b: ["fib-check", "--routes", str(ROUTES4),
                                                   "--kernel-json", str(ROUTES4)], 2,
         lambda b: str(ROUTES4), "not an `ip -j route show` JSON array"),
    _bad_kernel_json("fib-check missing json", "missing"),
    Case("fib-check missing routes", lambda b: ["fib-check", "--routes", b["missing"],
                                                "--kernel-json", b["kernel.json"]], 2,
         lambda b: b["missing"]),
    Case("fib-check routes file without routes", lambda b: ["fib-check", "--routes", STATUS4,
                                                            "--kernel-json", b["kernel.json"]],
         2, lambda b: STATUS4, "holds no routes"),
    Case("fib-check cut routes", lambda b: ["fib-check", "--routes", b["cut.raw"],
                                            "--kernel-json", b["kernel.json"]], 2,
         lambda b: b["cut.raw"], "truncated"),
    Case("fib-check --table -1", lambda b: ["fib-check", "--table", "-1"], 2,
         lambda b: "--table"),
    Case("fib-check --timeout 0", lambda b: ["fib-check", "--timeout", "0"], 2,
         lambda b: "--timeout"),
    Case("fib-check socket and routes", lambda b: ["fib-check", "--socket", "x", "--routes",
                                                   str(ROUTES4)], 2, lambda b: "--routes"),
    Case("fib-check no BIRD", lambda b: ["fib-check", "--socket", b["missing"],
                                         "--kernel-json", b["kernel.json"]], 1,
         lambda b: b["missing"]),
    # agent: what it cannot even start with
    Case("agent bad datastore", lambda b: ["agent", "--node", "n", "--datastore", "zk"], 2,
         lambda b: "--datastore"),
    # exporter: what it cannot even start with (BIRD failing is a metric, never an exit)
    Case("exporter no address", lambda b: ["exporter", "--listen", "9324"], 2,
         lambda b: "--listen", "HOST:PORT"),
    Case("exporter --period 0", lambda b: ["exporter", "--listen", ":9324", "--period", "0"],
         2, lambda b: "--period"),
    # cluster: bad arguments are 2 before any datastore is asked
    Case("cluster bad datastore", lambda b: ["cluster", "--datastore", "zk"], 2,
         lambda b: "--datastore"),
    Case("cluster -o bogus", lambda b: ["cluster", "-o", "bogus"], 2, lambda b: "-o/--output"),
    Case("cluster request needs a scope", lambda b: ["cluster", "request"], 2,
         lambda b: "--all-nodes"),
    Case("cluster request bad prefix", lambda b: ["cluster", "request", "--all-nodes",
                                                  "--prefix", "a b"], 2,
         lambda b: "--prefix", "not valid"),
    Case("cluster request bad class", lambda b: ["cluster", "request", "--all-nodes",
                                                 "--classes", "BGP,Foo"], 2,
         lambda b: "--classes", "Foo"),
    Case("cluster request --period -1", lambda b: ["cluster", "request", "--all-nodes",
                                                   "--period", "-1"], 2, lambda b: "--period"),
    Case("unknown command", lambda b: ["frobnicate"], 2, lambda b: "frobnicate"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, bad, capsys):
    rc = main(case.argv(bad))
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert rc == case.rc, cap.err
    assert "Traceback" not in cap.err
    assert len(lines) == 1, lines
    assert case.names(bad) in lines[0]
    assert case.text in lines[0]
    if case.argv(bad)[0] in ("status", "fib-check"):
        assert cap.out == ""             # a failed command prints no half result


def test_parse_keeps_what_parsed_before_the_fault(bad, capsysbinary):
    rc = main(["parse", STATUS4, b_cut := bad["cut.raw"], bad["cut.gz"]])
    cap = capsysbinary.readouterr()
    recs = [json.loads(x) for x in cap.out.splitlines()]
    assert rc == 2
    assert {r["source"] for r in recs} == {STATUS4, b_cut}   # cut.gz holds no whole line
    ref = _partial(ROUTES4.read_bytes()[:150])
    assert [r["record"] for r in recs if r["source"] == b_cut] == ref


def _partial(data: bytes) -> list:
    try:
        nodestatus.parse(data)
    except ParseError as exc:
        import msgspec
        return json.loads(msgspec.json.encode(exc.partial))
    raise AssertionError("the cut capture parsed whole")


def test_socket_path_that_is_no_socket_warns(bad, capsys):
    """Calico's rule: an absent daemon is NotReady, not an error; a path the user typed
    that is no socket still deserves a line."""
    rc = main(["status", "--node", "n", "--classes", "Agent", "-o", "json",
               "--socket4", bad["empty.txt"], "--socket6", bad["folder"]])
    cap = capsys.readouterr()
    assert rc == 0
    assert json.loads(cap.out)["status"]["agent"] == {"birdV4": {"state": "NotReady"},
                                                      "birdV6": {"state": "NotReady"}}
    warn = cap.err.strip().splitlines()
    assert len(warn) == 2
    assert bad["empty.txt"] in warn[0] and "not a socket" in warn[0]
    assert bad["folder"] in warn[1] and "directory" in warn[1]


# --------------------------------------------------------------------------- the library


def test_library_rejects_wrong_types(bad):
    with pytest.raises(TypeError, match="int"):
        nodestatus.parse(42)                     # type: ignore[arg-type]
    with pytest.raises(TypeError, match="NoneType"):
        nodestatus.parse(None)                   # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary file object"):
        list(nodestatus.iter_records(42))        # type: ignore[arg-type]
    with open(STATUS4) as text:
        with pytest.raises(TypeError, match="binary mode"):
            list(nodestatus.iter_records(text))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size"):
        list(nodestatus.iter_records(STATUS4, chunk_size=0))
    with pytest.raises(TypeError, match="chunk_size"):
        list(nodestatus.iter_records(STATUS4, chunk_size="64k"))  # type: ignore[arg-type]


def test_library_reads_files_through_the_input_layer(bad):
    with open(str(ROUTES4), "rb") as f:
        assert nodestatus.parse(f) == nodestatus.parse(ROUTES4.read_bytes())
    assert nodestatus.parse(Path(bad["trailing.bz2"]).parent / "kernel.json") != []  # PathLike
    with pytest.raises(InputError, match="broken gzip data") as exc:
        list(nodestatus.iter_records(bad["corrupt.gz"]))
    assert exc.value.source == bad["corrupt.gz"] and exc.value.offset is not None
    with pytest.raises(InputError, match="cut short") as cut:
        list(nodestatus.iter_records(bad["cut.gz"]))
    assert isinstance(cut.value.partial, list)
    with pytest.raises(TruncatedReplyError):
        list(nodestatus.iter_records(bad["cut.raw"]))


# --------------------------------------------------------------------------- one status, any form


def _status_json(argv: List[str]) -> dict:
    return json.loads(subprocess.run(argv, capture_output=True, check=True).stdout)


def test_status_dump_is_the_same_from_every_form(tmp_path):
    """The same capture as a plain file, .gz, .bz2, .xz, .zst, a FIFO, a pipe on stdin,
    ``/dev/stdin`` and ``<(…)`` gives the same status (each input is read once)."""
    zstandard = pytest.importorskip("zstandard", reason="the [zstd] extra is not installed")
    routes = ROUTES4.read_bytes()
    forms = {"gz": gzip.compress(routes), "bz2": bz2.compress(routes),
             "xz": lzma.compress(routes), "zst": zstandard.ZstdCompressor().compress(routes)}
    base = [sys.executable, "-m", "nodestatus", "status", "--node", "node1", "-o", "json",
            "--dump4", STATUS4, PROTOS4]
    want = _status_json(base + [str(ROUTES4)])
    want["status"].pop("lastUpdated")
    assert len(want["status"]["routes"]["routesV4"]) == 7

    def same(argv, **kw):
        got = json.loads(subprocess.run(argv, capture_output=True, check=True, **kw).stdout)
        got["status"].pop("lastUpdated")
        assert got == want, argv

    for ext, data in forms.items():
        f = tmp_path / f"routes.{ext}"
        f.write_bytes(data)
        same(base + [str(f)])
    fifo = tmp_path / "routes.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(routes))
    writer.start()
    same(base + [str(fifo)])
    writer.join()
    same(base + ["-"], input=routes)
    same(base + ["/dev/stdin"], input=routes)
    shell = " ".join(f"'{a}'" for a in base) + f" <(cat '{ROUTES4}')"
    same(["bash", "-c", shell])


def test_parse_reads_a_pipe_not_the_sample():
    """`cat capture | nodestatus parse` parses the capture (it used to parse the bundled
    sample); the sample only when asked for."""
    run = subprocess.run([sys.executable, "-m", "nodestatus", "parse", "-q"],
                         input=ROUTES4.read_bytes(), capture_output=True)
    recs = [json.loads(x) for x in run.stdout.splitlines()]
    assert run.returncode == 0 and recs
    assert {r["source"] for r in recs} == {"<stdin>"}
    assert len(recs) == len(nodestatus.parse(ROUTES4.read_bytes()))
    sample = subprocess.run([sys.executable, "-m", "nodestatus", "parse", "-q", "--sample"],
                            input=b"", capture_output=True)
    assert sample.returncode == 0
    assert {json.loads(x)["source"].rsplit("/", 2)[-2] for x in sample.stdout.splitlines()} \
        == {"v4", "v6"}


def test_output_on_a_full_disk_is_one_line():
    with open("/dev/full", "wb") as full:
        run = subprocess.run([sys.executable, "-m", "nodestatus", "parse", "-q", STATUS4],
                             stdout=full, stderr=subprocess.PIPE, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "nodestatus parse: cannot write the output: No space left on device"]


def test_readme_exit_code_table_covers_every_command():
    """The README's table is the contract these cases test: one row per command."""
    from nodestatus.cli import build_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1]
    table = section[section.index("| command"):].split("\n\n", 1)[0]
    rows = [line.split("|")[1].strip(" `") for line in table.splitlines()[2:]]
    sub = next(a for a in build_parser()._actions if a.dest == "cmd")
    assert sorted(rows) == sorted(sub.choices)
    import collections

    commands = {c.argv(collections.defaultdict(str))[0] for c in CASES
                if c.name != "unknown command"}
    assert commands == set(sub.choices)
