"""Shared test helpers: one place decides whether a missing prerequisite skips or fails."""
from __future__ import annotations

import os

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(condition: object, reason: str) -> None:
    """Stop the test unless ``condition`` holds: ``pytest.fail`` under ``CI=true`` (CI must
    run everything), ``pytest.skip`` with the reason locally. Never a silent skip."""
    if condition:
        return
    if _in_ci():
        pytest.fail(f"CI=true and a prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(name="require", scope="session")
def _require_fixture():
    """:func:`require` as a fixture, for modules that cannot import this conftest by name."""
    return require
