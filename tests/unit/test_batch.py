"""Batch mode: ``nodestatus parse`` over a mixed folder (real captures, compressed copies,
nested folders, broken files) and ``nodestatus diff`` over real captures.

What matters: nothing is dropped silently (counts equal the files parsed one by one, every
problem is ``file:line: message``), output does not depend on ``--jobs``, and a diff shows
exactly the edits made to a copy."""
from __future__ import annotations

import bz2
import collections
import gzip
import io
import json
import lzma
import os
import shutil
import zlib
from pathlib import Path

import msgspec
import pytest
import yaml

import nodestatus
from nodestatus import captures
from nodestatus.cli import main
from nodestatus.iproute import KernelRoute, parse_ip_json
from nodestatus.structs import ReplyEnd

DATA = Path(__file__).resolve().parent.parent / "data" / "captures"
V168 = DATA / "1.6.8"
LAB = DATA / "calico-lab-node1"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A folder like a support engineer's: captures of two nodes in nested folders, compressed
    copies, an ip JSON dump and the broken ones. Returns (root, {name: expected problem})."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "node1" / "v4").mkdir(parents=True)
    (root / "node2" / "deep" / "er").mkdir(parents=True)
    for f in ("show_status.raw", "show_protocols_all.raw", "show_route_all.raw"):
        shutil.copy(LAB / "v4" / f, root / "node1" / "v4" / f)
    shutil.copy(LAB / "kernel4.json", root / "node1" / "kernel4.json")
    for f in ("show_route.birdc.txt", "show_protocols.raw.txt", "session_pipelined.txt",
              "show_route_count.birdc-v.txt"):
        shutil.copy(V168 / f, root / "node2" / f)
    route_all = (V168 / "show_route_all.raw.txt").read_bytes()
    # compression is sniffed, not read off the name: the .txt one is xz inside
    (root / "node2" / "deep" / "route_all.gz").write_bytes(gzip.compress(route_all))
    (root / "node2" / "deep" / "er" / "route_all.bz2").write_bytes(bz2.compress(route_all))
    (root / "node2" / "deep" / "er" / "route_all.txt").write_bytes(lzma.compress(route_all))
    # wrong command: counted as Unsupported, not a problem
    shutil.copy(V168 / "show_interfaces.raw.txt", root / "node2" / "show_interfaces.raw.txt")
    bad = root / "bad"
    bad.mkdir()
    (bad / "truncated.raw").write_bytes(route_all[: route_all.index(b"1007-192.168.50.0")])
    (bad / "garbage.bin").write_bytes(bytes(range(256)) * 8)
    (bad / "empty.txt").write_bytes(b"")
    (bad / "truncated.gz").write_bytes(gzip.compress(route_all)[:300])
    (bad / "iproute.txt").write_bytes(b"default via 10.0.0.1 dev eth0 proto dhcp metric 100\n"
                                      b"10.0.0.0/24 dev eth0 proto kernel scope link\n")
    problems = {
        "truncated.raw": ":31: input ends inside a routes reply",
        "garbage.bin": ":1: binary data",
        "empty.txt": ":0: empty: no BIRD reply in it",
        "truncated.gz": ":0: gzip data is cut short",
        "iproute.txt": ":1: plain-text `ip route` output is not supported",
    }
    return root, problems


def _single(path: Path) -> collections.Counter:
    """The reference: one file through ``Parser`` (or the ip JSON decoder) on its own."""
    data = path.read_bytes()
    for magic, decompressor in ((b"\x1f\x8b", lambda: zlib.decompressobj(31)),
                                (b"BZh", bz2.BZ2Decompressor), (b"\xfd7zXZ", lzma.LZMADecompressor)):
        if data.startswith(magic):
            try:  # a truncated stream: keep all that decompresses
                data = decompressor().decompress(data)
            except (EOFError, OSError, lzma.LZMAError, zlib.error):
                data = b""
    if not data or b"\x00" in data[:4096]:
        return collections.Counter()
    if data.lstrip().startswith(b"["):
        return collections.Counter({"kernel_route": len(parse_ip_json(data))})
    parser = nodestatus.Parser(reply_markers=True)
    recs = []
    try:
        recs += parser.feed(data)
        recs += parser.close()
    except nodestatus.ParseError as exc:
        recs += exc.partial
    return collections.Counter(type(r).__struct_config__.tag for r in recs
                               if not isinstance(r, ReplyEnd))


def _run(argv, capsysbinary):
    rc = main(argv)
    cap = capsysbinary.readouterr()
    return rc, cap.out, cap.err.decode()


def test_mixed_folder_counts_and_problems(mixed, capsysbinary):
    root, problems = mixed
    rc, out, err = _run(["parse", "-j", "1", str(root)], capsysbinary)
    lines = [json.loads(x) for x in out.splitlines()]
    assert rc == 2                      # bad input, whatever parsed is still written
    expected = collections.Counter()
    for f in root.rglob("*"):
        if f.is_file():
            expected += _single(f)
    got = collections.Counter(l["type"] for l in lines)
    assert got == expected
    assert got["route"] > 0 and got["kernel_route"] == 12 and got["unsupported"] >= 2
    assert all(l["type"] == l["record"]["record"] for l in lines)
    # the 3 compressed good copies each give the same routes as the plain file
    by_src = collections.Counter(l["source"] for l in lines if l["type"] == "route")
    deep = [s for s in by_src if "/deep/" in s]
    assert len(deep) == 3 and len({by_src[s] for s in deep}) == 1
    # every problem, and only them, as file:line: message
    listed = [l.strip() for l in err.splitlines() if l.startswith("  ")]
    assert len(listed) == len(problems)
    for name, text in problems.items():
        assert any(l.startswith(str(root / "bad" / name) + text) for l in listed), (name, listed)
    assert "13 files (5 with problems)" in err.replace(",", "") or "files (5 with" in err
    # what parsed before the truncation is kept
    trunc = [l for l in lines if l["source"].endswith("truncated.raw")]
    assert len(trunc) == _single(root / "bad" / "truncated.raw")["route"] > 0


def test_reply_index_of_a_pipelined_session(capsysbinary):
    rc, out, _ = _run(["parse", "--only", "status,counts,protocols,replies",
                       str(V168 / "session_pipelined.txt")], capsysbinary)
    lines = [json.loads(x) for x in out.splitlines()]
    assert rc == 0
    ends = [l for l in lines if l["type"] == "reply_end"]
    assert [e["record"]["index"] for e in ends] == list(range(len(ends)))
    for l in lines:
        if l["type"] != "reply_end":  # a record's reply = the ReplyEnd that follows it
            nxt = next(e for e in ends if lines.index(e) > lines.index(l))
            assert l["reply"] == nxt["record"]["index"]


def test_jobs_do_not_change_output(mixed, capsysbinary):
    root, _ = mixed
    one = _run(["parse", "-j", "1", str(root), str(LAB / "v6")], capsysbinary)
    two = _run(["parse", "-j", "2", str(root), str(LAB / "v6")], capsysbinary)
    assert one[0] == two[0] == 2
    assert one[1] == two[1] and one[1]
    strip = lambda e: e.split("\n", 1)[1]  # the first line holds the timing
    assert strip(one[2]) == strip(two[2])


def test_fail_fast_stops_at_first_problem(mixed, capsysbinary):
    root, _ = mixed
    good = str(V168 / "show_route.raw.txt")
    for jobs in ("1", "2"):
        rc, out, err = _run(["parse", "-j", jobs, "--fail-fast", good,
                             str(root / "bad" / "empty.txt"), good], capsysbinary)
        srcs = {json.loads(x)["source"] for x in out.splitlines()}
        assert rc == 2 and srcs == {good}
        assert "2 files" in err and "--fail-fast" in err
        assert len(out.splitlines()) == _single(V168 / "show_route.raw.txt")["route"]


def test_output_dir_one_file_per_input(mixed, tmp_path, capsysbinary):
    root, _ = mixed
    outdir = tmp_path / "out"
    rc, out, err = _run(["parse", "-j", "2", "--output-dir", str(outdir), str(root)],
                        capsysbinary)
    assert rc == 2 and out == b""
    inputs = [f for f in root.rglob("*") if f.is_file()]
    written = sorted(outdir.rglob("*.ndjson"))
    assert len(written) == len(inputs)
    n = sum(len(f.read_bytes().splitlines()) for f in written)
    assert n == sum(sum(_single(f).values()) for f in inputs)
    assert (outdir / root.name / "node1" / "kernel4.json.ndjson").exists()


def test_only_routes(mixed, capsysbinary):
    root, _ = mixed
    rc, out, _ = _run(["parse", "--only", "routes", str(root / "node1")], capsysbinary)
    types = {json.loads(x)["type"] for x in out.splitlines()}
    assert rc == 0 and types == {"route"}
    rc, _, err = _run(["parse", "--only", "bogus", str(root)], capsysbinary)
    assert rc == 2 and "unknown record kind" in err


@pytest.mark.parametrize("fmt", ["json", "msgpack", "yaml"])
def test_formats_decode_back(fmt, capsysbinary):
    files = [str(LAB / "v4" / "show_protocols_all.raw"), str(LAB / "v4" / "show_route.raw"),
             str(LAB / "kernel4.json")]
    _, ref, _ = _run(["parse", *files], capsysbinary)
    ref_lines = [json.loads(x) for x in ref.splitlines()]
    rc, out, _ = _run(["parse", "-o", fmt, "-j", "2", *files], capsysbinary)
    assert rc == 0
    if fmt == "json":
        got = json.loads(out)
    elif fmt == "yaml":
        got = yaml.safe_load(out)
    else:  # a stream of maps: prefix an array32 header to decode it in one call
        n = len(ref_lines).to_bytes(4, "big")
        got = msgspec.msgpack.decode(b"\xdd" + n + out)
    assert got == ref_lines


def test_stdin_and_empty_json(monkeypatch, capsysbinary):
    data = gzip.compress((V168 / "show_status.raw.txt").read_bytes())
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    rc, out, _ = _run(["parse", "-"], capsysbinary)
    line = json.loads(out)
    assert rc == 0 and line["source"] == "<stdin>" and line["type"] == "status"
    rc, out, _ = _run(["parse", "-o", "json", "--only", "kernel", str(V168 / "show_route.raw.txt")],
                      capsysbinary)
    assert rc == 0 and json.loads(out) == []


def test_ip_json_streamed_in_batches():
    data = (LAB / "kernel4.json").read_bytes()
    from nodestatus.iproute import iter_ip_json

    rows = [r for b in iter_ip_json(io.BytesIO(data), chunk_size=7, batch=5) for r in b]
    assert rows == parse_ip_json(data) and len(rows) == 12
    assert rows[2] == KernelRoute(dst="192.168.1.0/26", type="blackhole", protocol="bird")
    assert rows[7].table == "local" and rows[7].scope == "host"


def test_missing_path_is_a_problem(tmp_path, capsysbinary):
    rc, _, err = _run(["parse", str(tmp_path / "nope.txt")], capsysbinary)
    assert rc == 2 and f"{tmp_path / 'nope.txt'}:0: cannot open: No such file" in err


# --------------------------------------------------------------------------- diff


def _edited(tmp_path) -> Path:
    s = (V168 / "show_route_all.raw.txt").read_text()
    removed = ("1007-10.14.0.0/16       prohibited [static1 06:05:05] * (200)\n"
               "1008-\tType: static unicast univ\n")
    assert removed in s
    s = s.replace(removed, "")
    s = s.replace("1007-192.168.50.0/24    via 10.0.0.2 on eth0",
                  "1007-192.168.50.0/24    via 10.0.0.7 on eth0")
    s = s.replace("(65000,100) (65000,200)", "(65000,100) (65000,300)")
    p = tmp_path / "edited.txt"
    p.write_text(s)
    return p


def test_diff_identical(capsysbinary):
    f = str(V168 / "show_route_all.raw.txt")
    rc, out, _ = _run(["diff", f, f], capsysbinary)
    assert rc == 0 and out == b"identical\n"
    # another framing of the same capture is the same table
    rc, _, _ = _run(["diff", str(V168 / "show_route.raw.txt"), str(V168 / "show_route.birdc.txt")],
                    capsysbinary)
    assert rc == 0


def test_diff_exact_changes(tmp_path, capsysbinary):
    rc, out, _ = _run(["diff", "-o", "ndjson", str(V168 / "show_route_all.raw.txt"),
                       str(_edited(tmp_path))], capsysbinary)
    changes = [json.loads(x) for x in out.splitlines()]
    assert rc == 1
    got = {(c["change"], c["key"]["prefix"], c["key"]["protocol"],
            tuple(f["field"] for f in c.get("fields", ()))) for c in changes}
    assert got == {("removed", "10.14.0.0/16", "static1", ()),
                   ("changed", "192.168.50.0/24", "kernel1", ("nexthops",)),
                   ("changed", "10.10.0.0/16", "static1", ("bgp.communities",))}
    comm = next(c for c in changes if c["key"]["prefix"] == "10.10.0.0/16")["fields"][0]
    assert comm["old"] == [[65000, 100], [65000, 200]]
    assert comm["new"] == [[65000, 100], [65000, 300]]
    rc, out, _ = _run(["diff", "-o", "wide", str(V168 / "show_route_all.raw.txt"),
                       str(_edited(tmp_path))], capsysbinary)
    assert b"nexthops: via 10.0.0.2 on eth0 -> via 10.0.0.7 on eth0" in out
    rc, out, _ = _run(["diff", "-o", "json", str(V168 / "show_route_all.raw.txt"),
                       str(_edited(tmp_path))], capsysbinary)
    doc = json.loads(out)
    assert doc["identical"] is False and len(doc["changes"]) == 3


def test_diff_alternatives_keep_their_pairing(tmp_path, capsysbinary):
    """10.10.0.0/16 has a static1 and a static-alt.v4 route: swapping the order of the
    alternatives in a capture changes nothing."""
    s = (V168 / "show_route.raw.txt").read_text()
    a = " 10.10.0.0/16       via 10.0.0.2 on eth0 [static1 06:05:05] * (200)\n"
    b = "                    via 10.0.1.2 on cali0123456789a [static-alt.v4 06:04:57] (50)\n"
    assert a + b in s
    swapped = tmp_path / "swapped.txt"
    swapped.write_text(s.replace(a + b, " 10.10.0.0/16" + b[13:] + " " * 19 + a[13:]))
    rc, out, _ = _run(["diff", str(V168 / "show_route.raw.txt"), str(swapped)], capsysbinary)
    assert rc == 0, out


def test_diff_protocols(tmp_path, capsysbinary):
    old = V168 / "show_protocols.raw.txt"
    new = tmp_path / "protocols.txt"
    s = old.read_text()
    row = " static1  Static   master   up  "
    assert row in s
    new.write_text(s.replace(row, " static1  Static   master   down"))
    rc, out, _ = _run(["diff", "-o", "ndjson", str(old), str(new)], capsysbinary)
    changes = [json.loads(x) for x in out.splitlines()]
    assert rc == 1 and len(changes) == 1
    assert changes[0]["key"] == {"name": "static1"}
    assert changes[0]["fields"] == [{"field": "state", "old": "up", "new": "down"}]


def test_diff_bad_arguments(tmp_path, capsysbinary):
    f = str(V168 / "show_route.raw.txt")
    assert _run(["diff", f, str(tmp_path / "missing")], capsysbinary)[0] == 2
    assert _run(["diff", f, str(V168 / "show_status.raw.txt")], capsysbinary)[0] == 2
    assert _run(["diff", f, str(V168 / "show_protocols.raw.txt")], capsysbinary)[0] == 2
    assert _run(["diff", f], capsysbinary)[0] == 2


def test_unreadable_folder_is_a_problem_not_zero_files(tmp_path, monkeypatch, capsysbinary):
    """A folder that cannot be listed is reported (root reads everything, so listing is
    made to fail the way a chmod 000 folder fails for other users)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(V168 / "show_route.raw.txt", locked / "x.txt")
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rc, out, err = _run(["parse", "-q", str(locked)], capsysbinary)
    assert rc == 2 and out == b""
    assert err.strip().splitlines() == [f"{locked}:0: cannot read folder: Permission denied"]
