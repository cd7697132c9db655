"""BGP attribute values come from caches that pause when a table stops repeating them
(random community values, one AS path per route). Whatever the caches do, the values must
be exactly the text's: checked here against a plain Python reading of the same lines."""
import random
import re

import pytest

from nodestatus import Route, parse

ROUTE = "1007-%s  via 192.0.2.1 on eth0 [bgp1 2026-02-09] * (100) [AS%di]\n"


def _dump(routes):
    out = []
    for i, (path, comms, lcomms) in enumerate(routes):
        net = "%d.%d.%d.0/24" % (1 + i // 65536, (i // 256) % 256, i % 256)
        out.append(ROUTE % (net, path[-1] if path else 0))
        out.append("1008-\tType: BGP unicast univ\n")
        out.append("1012-\tBGP.origin: IGP\n")
        out.append(" \tBGP.as_path: %s\n" % " ".join(map(str, path)))
        out.append(" \tBGP.next_hop: 192.0.2.1\n")
        if comms:
            out.append(" \tBGP.community: %s\n" % " ".join("(%d,%d)" % c for c in comms))
        if lcomms:
            out.append(" \tBGP.large_community: %s\n" % " ".join("(%d, %d, %d)" % c for c in lcomms))
    out.append("0000 \n")
    return "".join(out).encode()


def _python_reading(data: bytes):
    """(as_path, communities, large communities) per route, read with regexes."""
    out = []
    for block in data.decode().split("1008-")[1:]:
        path = re.search(r"BGP\.as_path: ([^\n]*)", block).group(1)
        comm = re.search(r"BGP\.community: ([^\n]*)", block)
        lc = re.search(r"BGP\.large_community: ([^\n]*)", block)
        out.append((
            tuple(int(a) for a in path.split()),
            tuple((int(a), int(b)) for a, b in re.findall(r"\((\d+),(\d+)\)", comm.group(1)))
            if comm else (),
            tuple(tuple(map(int, t)) for t in re.findall(r"\((\d+), (\d+), (\d+)\)", lc.group(1)))
            if lc else (),
        ))
    return out


@pytest.mark.parametrize("kind", ["random", "repeating", "random-then-repeating"])
def test_values_equal_the_text_whether_caches_hit_or_pause(kind):
    rng = random.Random(5)
    vocab_paths = [[rng.randint(1, 400000) for _ in range(rng.randint(1, 8))] for _ in range(20)]
    vocab_comms = [[(rng.choice((174, 3356)), rng.randint(0, 65535)) for _ in range(4)]
                   for _ in range(20)]
    routes = []
    for i in range(12000):
        repeating = kind == "repeating" or (kind == "random-then-repeating" and i >= 6000)
        if repeating:
            path, comms = rng.choice(vocab_paths), rng.choice(vocab_comms)
        else:
            path = [rng.randint(1, 4294967294) for _ in range(rng.randint(1, 10))]
            comms = [(rng.choice((65000, 174, 4294967295)), rng.randint(0, 4294967295))
                     for _ in range(rng.randint(0, 9))]
        lcomms = [(4200000000, rng.randint(0, 9), rng.randint(0, 99999))] if i % 7 == 0 else []
        routes.append((path, comms, lcomms))
    data = _dump(routes)
    got = [r for r in parse(data) if isinstance(r, Route)]
    assert len(got) == len(routes)
    expected = _python_reading(data)
    assert [(r.bgp.as_path, r.bgp.communities, r.bgp.large_communities) for r in got] == expected
    assert all(type(a) is int and type(b) is int for r in got for a, b in r.bgp.communities)


@pytest.mark.parametrize("text, path, truncated, raw", [
    ("65001 { 65002 65003 } 65004", (65001, frozenset({65002, 65003}), 65004), False, False),
    ("1 2 3...", (1, 2), True, False),
    ("1 2 ...", (1, 2), True, False),
    ("{ 1 2 ...", (frozenset({1, 2}),), True, False),
    ("{ 1 } { 2 3 }", (frozenset({1}), frozenset({2, 3})), False, False),
    ("{ 1 { 2 } 3", (frozenset({2}), 3), False, False),
    ("(65000 1) 2", (65000, 1, 2), False, True),
    ("12345678901234567890 7", (7,), False, True),
    ("", (), False, False),
    ("... 5", (5,), True, False),
])
def test_as_path_shapes(text, path, truncated, raw):
    data = ("1007-10.0.0.0/8  via 192.0.2.1 on eth0 [bgp1 2026-02-09] * (100) [i]\n"
            "1012-\tBGP.as_path: %s\n0000 \n" % text).encode()
    (r,) = parse(data)
    assert r.bgp.as_path == path
    assert r.bgp.as_path_truncated is truncated
    assert (r.bgp.as_path_raw == text) is raw


def test_pair_cache_at_its_largest_pauses_on_random_values_and_stays_exact():
    """Enough distinct pairs to grow the pair cache to its largest size, fill it, and
    make it pause: the values stay exact through all three."""
    rng = random.Random(9)
    routes = [([64512 + i % 1000], [(rng.randint(0, 65535), rng.randint(0, 65535))
                                   for _ in range(12)], []) for i in range(36000)]
    data = _dump(routes)
    got = [r.bgp.communities for r in parse(data) if isinstance(r, Route)]
    assert got == [c for _, c, _ in _python_reading(data)]
