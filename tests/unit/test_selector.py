"""Label selectors (``nodestatus.sinks.selector``): Kubernetes' grammar and matching."""
from __future__ import annotations

import pytest

from nodestatus.errors import NodeStatusError, SelectorError
from nodestatus.sinks.selector import Selector

LABELS = {"reporter": "nodestatus", "tier": "edge", "zone": "a", "rank": "7", "flag": ""}


@pytest.mark.parametrize("text, matches", [
    ("", True),
    ("reporter=nodestatus", True),
    ("reporter==nodestatus", True),
    ("reporter = nodestatus", True),
    ("reporter=calico", False),
    ("reporter!=calico", True),
    ("missing!=x", True),                      # != matches a missing key (as Kubernetes)
    ("tier in (edge, core)", True),
    ("tier in (core)", False),
    ("missing in (a)", False),
    ("tier notin (core)", True),
    ("tier notin (edge,core)", False),
    ("missing notin (a)", True),
    ("zone", True),
    ("missing", False),
    ("!missing", True),
    ("!zone", False),
    ("flag=", True),                           # an empty value is a value
    ("rank>5", True),
    ("rank<5", False),
    ("tier>5", False),                         # not an integer: never greater
    ("reporter=nodestatus,tier in (edge),!missing,zone", True),
    ("reporter=nodestatus,!zone", False),
    ("example.com/role", False),
])
def test_matches(text, matches):
    assert Selector.parse(text).matches(LABELS) is matches


def test_no_labels():
    assert Selector.parse("").matches(None)
    assert Selector.parse("!a").matches(None)
    assert not Selector.parse("a").matches({})


@pytest.mark.parametrize("text, canonical", [
    ("  a = b ,c!= d", "a=b,c!=d"),
    ("x in ( p , q ), y notin (r)", "x in (p,q),y notin (r)"),
    ("x in (p,p)", "x in (p)"),
    ("!a, example.com/b", "!a,example.com/b"),
    ("n > 3", "n>3"),
])
def test_canonical_text(text, canonical):
    """What the Kubernetes sink sends as labelSelector; it parses back the same."""
    sel = Selector.parse(text)
    assert str(sel) == canonical
    assert Selector.parse(str(sel)) == sel


@pytest.mark.parametrize("text, where, message", [
    ("a b", 3, "expected an operator"),
    ("=b", 1, "expected a label key"),
    ("a,", 3, "missing after ','"),
    ("a,,b", 3, "expected a label key"),
    ("a in ()", 7, "list of values is empty"),
    ("a in (b", 8, "found the end"),
    ("a in b", 6, "expected '('"),
    ("a=b c", 5, "expected ',' or the end"),
    ("A/b=c", 1, "prefix must be a DNS subdomain"),
    ("-a=b", 1, "the name must be"),
    ("a=" + "v" * 64, 3, "at most 63"),
    ("a>x", 3, "needs an integer"),
    ("!", 2, "found the end"),
    ("a=(", 3, "expected ',' or the end"),
])
def test_errors_name_the_place(text, where, message):
    with pytest.raises(SelectorError) as exc:
        Selector.parse(text)
    assert exc.value.position + 1 == where
    assert message in str(exc.value) and f"at character {where} of {text!r}" in str(exc.value)
    assert isinstance(exc.value, NodeStatusError) and isinstance(exc.value, ValueError)
