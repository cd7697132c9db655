"""The bench baseline (benches/baselines/regex_parser.py) must build exactly the records the
Cython core builds from the same generated dumps, so the benchmark compares equal work.

Needs the compiled extension (``nodestatus._birdparse``): no fallback, no skip.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHES = Path(__file__).resolve().parents[2] / "benches"
sys.path.insert(0, str(BENCHES))

import nodestatus  # noqa: E402
import nodestatus._birdparse  # noqa: E402,F401  (required: fail loudly if not built)
from nodestatus.structs import Route  # noqa: E402

import gen_dump  # noqa: E402
from baselines import regex_parser  # noqa: E402

N = 300


@pytest.mark.parametrize("detail", [False, True], ids=["route", "all"])
@pytest.mark.parametrize("shape", gen_dump.SHAPES)
def test_baseline_matches_parser(shape, detail):
    data = gen_dump.generate_uncached(shape, N, detail, seed=7)
    ours = [r for r in nodestatus.parse(data) if isinstance(r, Route)]
    base = regex_parser.parse_routes(data)
    assert len(base) == N
    assert len(ours) == N
    for i, (a, b) in enumerate(zip(ours, base)):
        assert a == b, "route %d differs:\n nodestatus: %r\n baseline:   %r" % (i, a, b)


def test_framing_is_bird_16():
    data = gen_dump.generate_uncached("fulltable", N, True, seed=3)
    lines = data.split(b"\n")
    assert lines[0].startswith(b"1007-")
    assert lines[-2:] == [b"0000 ", b""]
    prev = None
    for line in lines[:-2]:
        assert len(line) <= 505 + 5, line[:40]
        if line[:1] == b" ":
            assert prev is not None
        else:
            code = line[:4]
            assert line[4:5] == b"-" and code != prev, line[:40]
            prev = code
    # long community lists wrap onto \t\t lines (bird-formats.md 5.4)
    data = gen_dump.generate_uncached("fulltable", 3000, True, seed=3)
    assert b"\n \t\t(" in data


def test_generate_is_seeded():
    a = gen_dump.generate_uncached("calico", 500, True, seed=11)
    assert a == gen_dump.generate_uncached("calico", 500, True, seed=11)
    assert a != gen_dump.generate_uncached("calico", 500, True, seed=12)


def test_samples_cover_the_hard_cases():
    """The 300-route samples above must contain what makes the comparison meaningful."""
    full = regex_parser.parse_routes(gen_dump.generate_uncached("fulltable", N, True, seed=7))
    assert any(isinstance(seg, frozenset) for r in full for seg in r.bgp.as_path)
    assert any(r.bgp.large_communities for r in full)
    assert any(r.bgp.med is not None for r in full)
    assert any(len(r.bgp.communities) > 37 for r in full)  # wrapped onto \t\t lines
    assert any(not r.primary for r in full) and any(r.from_ for r in full)
    calico = regex_parser.parse_routes(gen_dump.generate_uncached("calico", N, True, seed=7))
    assert any(r.type == "blackhole" for r in calico)
    assert any(len(r.nexthops) > 1 and r.nexthops[0].weight == 1 for r in calico)
    assert any(r.attrs and "Kernel.metric" in r.attrs for r in calico)
    assert any(not r.primary and r.protocol.startswith("Mesh_") for r in calico)
