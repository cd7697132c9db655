"""Kubernetes label selectors (``app=x, tier in (a,b), !legacy``): parsed and matched here,
so that ``agent --selector`` means the same on every datastore.

The Kubernetes sink also hands the selector to the apiserver (``labelSelector``), which
then lists and watches only the matching resources; on etcd there is no server side, and
:meth:`Selector.matches` on ``metadata.labels`` is the whole story. The grammar is
apimachinery's ``labels.Parse``: requirements separated by commas, each one of ``key``,
``!key``, ``key=value``, ``key==value``, ``key!=value``, ``key in (v1,v2)``,
``key notin (v1,v2)``, ``key>N``, ``key<N``. Keys are qualified names (an optional DNS
prefix and ``/``), values label values (at most 63 characters, may be empty).
"""
from __future__ import annotations

import re
from typing import Any, List, Mapping, Optional, Tuple

import msgspec

from ..errors import SelectorError

__all__ = ("Selector", "Requirement")

#: Characters that end an identifier (apimachinery's lexer).
_SPECIAL = frozenset(" \t\n\r!=(),<>")
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_INT = re.compile(r"^-?[0-9]+$")

# operators as written in the canonical form
EXISTS, NOT_EXISTS, EQUALS, NOT_EQUALS, IN, NOT_IN, GT, LT = (
    "exists", "!", "=", "!=", "in", "notin", ">", "<")


class Requirement(msgspec.Struct, frozen=True):
    key: str
    op: str
    values: Tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, Any]) -> bool:
        has = self.key in labels
        if self.op == EXISTS:
            return has
        if self.op == NOT_EXISTS:
            return not has
        value = str(labels[self.key]) if has else ""
        if self.op in (EQUALS, IN):
            return has and value in self.values
        if self.op in (NOT_EQUALS, NOT_IN):
            return not has or value not in self.values
        if not has or not _INT.match(value):
            return False                       # GT / LT: only integer label values compare
        bound = int(self.values[0])
        return int(value) > bound if self.op == GT else int(value) < bound

    def __str__(self) -> str:
        if self.op == EXISTS:
            return self.key
        if self.op == NOT_EXISTS:
            return "!" + self.key
        if self.op in (IN, NOT_IN):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


class Selector(msgspec.Struct, frozen=True):
    """A parsed selector; the empty selector matches every resource."""

    requirements: Tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: Optional[str]) -> "Selector":
        """``text`` parsed; SelectorError naming the character where it goes wrong."""
        return cls(requirements=tuple(_Parser(text or "").requirements()))

    def matches(self, labels: Optional[Mapping[str, Any]]) -> bool:
        """Whether a resource with these ``metadata.labels`` is selected."""
        labels = labels if isinstance(labels, Mapping) else {}
        return all(r.matches(labels) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)

    def __str__(self) -> str:
        """The canonical text, as sent to the apiserver."""
        return ",".join(str(r) for r in self.requirements)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, at: Optional[int] = None) -> SelectorError:
        return SelectorError(f"label selector: {message}", selector=self.text,
                             position=self.pos if at is None else at)

    # -- lexer -----------------------------------------------------------------------------
    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def word(self) -> Tuple[str, int]:
        """The identifier here (possibly empty) and where it starts."""
        self.skip_space()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SPECIAL:
            self.pos += 1
        return self.text[start:self.pos], start

    def take(self, token: str) -> bool:
        self.skip_space()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    # -- grammar ---------------------------------------------------------------------------
    def requirements(self) -> List[Requirement]:
        out: List[Requirement] = []
        if not self.text.strip():
            return out
        while True:
            out.append(self.requirement())
            c = self.peek()
            if c == "":
                return out
            if c != ",":
                raise self.fail(f"expected ',' or the end, found {c!r}")
            self.pos += 1
            if self.peek() == "":
                raise self.fail("a requirement is missing after ','")

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.pos += 1
            return Requirement(self.key(), NOT_EXISTS)
        key = self.key()
        c = self.peek()
        if c in ("", ","):
            return Requirement(key, EXISTS)
        if self.take("==") or self.take("="):
            return Requirement(key, EQUALS, (self.value(),))
        if self.take("!="):
            return Requirement(key, NOT_EQUALS, (self.value(),))
        if c in "<>":
            self.pos += 1
            number, at = self.word()
            if not _INT.match(number):
                raise self.fail(f"{c!r} needs an integer, found {number!r}", at)
            return Requirement(key, GT if c == ">" else LT, (number,))
        op, at = self.word()
        if op not in (IN, NOT_IN):
            raise self.fail(f"expected an operator (=, ==, !=, in, notin, <, >) after "
                            f"{key!r}, found {op or self.peek()!r}", at)
        return Requirement(key, op, self.value_set())

    def key(self) -> str:
        key, at = self.word()
        if not key:
            found = self.peek()
            raise self.fail(f"expected a label key, found {found!r}" if found else
                            "expected a label key, found the end", at)
        prefix, _, name = key.rpartition("/")
        if "/" in key and (not prefix or len(prefix) > 253
                           or not _DNS1123_SUBDOMAIN.match(prefix)):
            raise self.fail(f"key {key!r}: the prefix must be a DNS subdomain "
                            "(lower-case letters, digits, '-' and '.')", at)
        if not name or len(name) > 63 or not _NAME.match(name):
            raise self.fail(f"key {key!r}: the name must be 1-63 letters, digits, '-', '_' "
                            "or '.', starting and ending with a letter or digit", at)
        return key

    def value(self) -> str:
        value, at = self.word()
        if value and (len(value) > 63 or not _NAME.match(value)):
            raise self.fail(f"value {value!r}: at most 63 letters, digits, '-', '_' or '.', "
                            "starting and ending with a letter or digit", at)
        return value

    def value_set(self) -> Tuple[str, ...]:
        if self.peek() != "(":
            raise self.fail("expected '(' and a list of values")
        self.pos += 1
        values: List[str] = []
        while True:
            values.append(self.value())
            c = self.peek()
            if c == ")":
                self.pos += 1
                break
            if c != ",":
                raise self.fail("expected ',' or ')' in the list of values, found " +
                                (repr(c) if c else "the end"))
            self.pos += 1
        if values == [""]:
            raise self.fail("the list of values is empty", self.pos - 1)
        return tuple(dict.fromkeys(values))
