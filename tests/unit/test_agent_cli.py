"""``nodestatus agent`` arguments: every bad one is exit 2 with one line naming it, no
traceback; a missing datastore client is not swallowed; every flag has help text."""
from __future__ import annotations

import sys

import pytest

from nodestatus import cli


@pytest.mark.parametrize("argv, env, names", [
    (["--timeout", "-1"], {}, "--timeout"),
    (["--timeout", "nan"], {}, "--timeout"),
    (["--timeout", "inf"], {}, "--timeout"),
    (["--timeout", "0"], {}, "--timeout"),
    (["--idle-timeout", "-5"], {}, "--idle-timeout"),
    (["--idle-timeout", "0"], {}, "--idle-timeout"),
    (["--datastore", "etcd"], {}, "--datastore"),
    ([], {"DATASTORE_TYPE": "etcd"}, "$DATASTORE_TYPE"),
    ([], {"DATASTORE_TYPE": "Kubernetes"}, "$DATASTORE_TYPE"),
    (["--selector", "tier in (a"], {}, "--selector"),
    (["--selector", "a b"], {}, "--selector"),
    (["--health-addr", "9180"], {}, "--health-addr"),
    (["--health-addr", "127.0.0.1:70000"], {}, "--health-addr"),
])
def test_bad_arguments_exit_2_with_one_line(argv, env, names, monkeypatch, capsys):
    monkeypatch.delenv("DATASTORE_TYPE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code = cli.main(["agent", "--node", "node1", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("nodestatus agent: " + names), err
    assert "Traceback" not in err


def test_node_is_required(monkeypatch, capsys):
    monkeypatch.delenv("NODENAME", raising=False)
    assert cli.main(["agent"]) == 2
    assert capsys.readouterr().err == "nodestatus agent: --node or $NODENAME is required\n"


def test_health_addr_in_use(monkeypatch, capsys, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli.main(["agent", "--node", "n", "--datastore", "etcdv3",
                         "--health-addr", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert f"--health-addr: cannot listen on 127.0.0.1:{port}" in err


@pytest.mark.parametrize("datastore, module", [("kubernetes", "kubernetes"),
                                               ("etcdv3", "etcd3gw")])
def test_missing_datastore_client_is_not_swallowed(datastore, module, monkeypatch):
    """cmd_agent lets ModuleNotFoundError through: main() turns it into the line naming
    pip install 'nodestatus[...]' (packaging), instead of a vague 'cannot use'."""
    monkeypatch.setitem(sys.modules, module, None)          # import raises ModuleNotFoundError
    for name in ("nodestatus.sinks.kube", "nodestatus.sinks.etcd"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    args = cli.build_parser().parse_args(["agent", "--node", "n", "--datastore", datastore])
    with pytest.raises(ModuleNotFoundError) as exc:
        args.func(args)
    assert exc.value.name == module


def test_every_agent_flag_has_help():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    agent = sub.choices["agent"]
    missing = [a.option_strings for a in agent._actions if a.option_strings and not a.help]
    assert missing == []
