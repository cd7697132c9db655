"""What ships is what is tested: the suite imports the installed wheel, never src/; every
module the wheel holds imports (both extensions compiled); every command answers ``--help``
through the installed console script; and every module the code imports beyond the core
install has its extra in ``cli.OPTIONAL_MODULES``."""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata as md
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict, List, Set

import pytest

import nodestatus
from nodestatus import cli

PKG = Path(nodestatus.__file__).resolve().parent
ROOT = Path(__file__).resolve().parents[2]          # the checkout or the unpacked sdist
EXTENSIONS = {"nodestatus._birdparse", "nodestatus._rtnl"}


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _canon(re.match(r"\s*([A-Za-z0-9._-]+)", req).group(1))


def shipped_modules() -> List[str]:
    """Module names of the .py and .so files in the installed distribution's RECORD."""
    out = []
    for f in md.files("nodestatus") or ():
        if f.parts[0] != "nodestatus" or f.suffix not in (".py", ".so"):
            continue
        parts = list(f.parts)
        parts[-1] = parts[-1].split(".")[0]        # _rtnl.cpython-311-x86_64-linux-gnu.so
        if parts[-1] == "__init__":
            parts.pop()
        out.append(".".join(parts))
    return sorted(out)


def test_suite_runs_against_the_installed_wheel():
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert PKG.parent in site, f"nodestatus comes from {PKG}, not from site-packages {site}"
    assert sys.prefix != sys.base_prefix, "not a virtualenv: `make test` makes a fresh one"
    direct_url = md.distribution("nodestatus").read_text("direct_url.json") or ""
    assert '"editable": true' not in direct_url, "an editable install runs src/, not the wheel"
    src = (ROOT / "src").resolve()
    assert all(Path(p or ".").resolve() != src for p in sys.path), sys.path


def test_wheel_holds_every_source_module():
    """The bug that started issue 11: the wheel lacked nodestatus.sinks. And no build
    input (.pyx, generated .c, annotation .html) rides along."""
    stray = [str(f) for f in md.files("nodestatus") or () if f.suffix in (".c", ".pyx", ".html")]
    assert stray == []
    shipped = set(shipped_modules())
    source = ROOT / "src"
    if not source.is_dir():
        pytest.skip(f"no source tree at {source} to compare with")
    expected = {".".join(p.relative_to(source).with_suffix("").parts).removesuffix(".__init__")
                for p in (source / "nodestatus").rglob("*.py")}
    expected |= {f"nodestatus.{p.stem}" for p in source.glob("*.pyx")}
    assert expected <= shipped, f"missing from the wheel: {sorted(expected - shipped)}"


def test_every_shipped_module_imports():
    names = shipped_modules()
    assert EXTENSIONS | {"nodestatus.sinks", "nodestatus.sinks.etcd", "nodestatus.sinks.kube"} \
        <= set(names)
    for name in names:
        if name == "nodestatus.__main__":           # runs the CLI: covered by --help below
            continue
        module = importlib.import_module(name)
        if name in EXTENSIONS:
            assert module.__file__.endswith(".so"), module.__file__   # compiled, no fallback


def subcommands() -> List[str]:
    actions = cli.build_parser()._actions
    sub = next(a for a in actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_the_parser_has_the_documented_commands():
    assert {"status", "parse", "diff", "fib-check", "agent"} <= set(subcommands())


@pytest.mark.parametrize("command", [[]] + [[c] for c in subcommands()],
                         ids=["nodestatus"] + subcommands())
def test_every_command_answers_help(command):
    script = Path(sysconfig.get_path("scripts")) / "nodestatus"     # the wheel's entry point
    proc = subprocess.run([str(script), *command, "--help"], capture_output=True, text=True,
                          timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(" ".join(["usage: nodestatus", *command])), proc.stdout[:200]
    assert proc.stderr == ""


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "nodestatus", "--version"],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert (proc.returncode, proc.stdout.strip()) == (0, f"nodestatus {nodestatus.__version__}")


# -- extras ------------------------------------------------------------------------------------
def imported_top_modules() -> Set[str]:
    """Top-level modules imported (absolutely) anywhere in the installed package."""
    found: Set[str] = set()
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def _extra_requirements() -> Dict[str, Set[str]]:
    """extra -> distribution names it requires (``None`` key: the core)."""
    out: Dict[str, Set[str]] = {}
    for req in md.requires("nodestatus") or ():
        marker = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", req)
        out.setdefault(marker.group(1) if marker else None, set()).add(_requirement_name(req))
    return out


def _closure(dists: Set[str]) -> Set[str]:
    """The distributions ``dists`` pull in (installed ones only, unconditional requirements)."""
    seen: Set[str] = set()
    todo = [d for d in dists if d != "nodestatus"]
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            reqs = md.requires(dist) or ()
        except md.PackageNotFoundError:
            continue
        todo += [_requirement_name(r) for r in reqs if "extra ==" not in r]
    return seen


def test_every_import_beyond_the_core_names_its_extra():
    extras = _extra_requirements()
    dists_of = {m: {_canon(d) for d in ds} for m, ds in md.packages_distributions().items()}
    core = _closure(extras[None])
    core_modules = {m for m, ds in dists_of.items() if ds & core}
    beyond = imported_top_modules() - set(sys.stdlib_module_names) - core_modules - {"nodestatus"}
    assert beyond == set(cli.OPTIONAL_MODULES), (
        "cli.OPTIONAL_MODULES must name exactly the modules beyond the core install: "
        f"missing {sorted(beyond - set(cli.OPTIONAL_MODULES))}, "
        f"stale {sorted(set(cli.OPTIONAL_MODULES) - beyond)}")
    for module, (extra, _what) in cli.OPTIONAL_MODULES.items():
        assert extra in extras, f"{module}: no extra [{extra}] in the metadata"
        assert dists_of.get(module, set()) & _closure(extras[extra]), \
            f"installing [{extra}] does not bring {module}"


def test_missing_extra_is_one_line_naming_the_install(monkeypatch, capsys):
    """In-process check of the message; tests/integration/test_core_install.py does it for
    real in a core-only virtualenv."""
    def no_client(args):
        raise ModuleNotFoundError("No module named 'etcd3gw'", name="etcd3gw")

    monkeypatch.setattr(cli, "cmd_agent", no_client)
    assert cli.main(["agent", "--node", "n1", "--datastore", "etcdv3", "--once"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("nodestatus agent: support for the etcdv3 datastore is not installed "
                          "(no module 'etcd3gw')")
    assert "pip install 'nodestatus[etcd]'" in err


def test_other_import_errors_are_not_hidden(monkeypatch):
    def broken(args):
        raise ModuleNotFoundError("No module named 'nodestatus.nothing'", name="nodestatus.nothing")

    monkeypatch.setattr(cli, "cmd_status", broken)
    with pytest.raises(ModuleNotFoundError):
        cli.main(["status"])
