"""The command line: exit codes (0 done, 1 BIRD/capture problem, 2 bad arguments or spec),
messages that name the file or socket, and the bundled-sample main job."""
import gzip
import json
from pathlib import Path

import pytest
import yaml

from nodestatus.cli import main

LAB = Path(__file__).resolve().parent.parent / "data" / "captures" / "calico-lab-node1"


def _dumps(fam):
    return [str(LAB / f"v{fam}" / n) for n in ("show_status.raw", "show_protocols_all.raw",
                                               "show_route_all.raw")]


def test_status_from_dumps_json(capsys):
    rc = main(["status", "--node", "node1", "--dump4", *_dumps(4), "--dump6", *_dumps(6),
               "-o", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["apiVersion"] == "projectcalico.org/v3" and out["kind"] == "CalicoNodeStatus"
    assert out["spec"] == {"node": "node1", "classes": ["Agent", "BGP", "Routes"],
                           "updatePeriodSeconds": 0}
    assert out["status"]["bgp"]["numberEstablishedV4"] == 2
    assert len(out["status"]["routes"]["routesV6"]) == 7


def test_status_from_a_resource_file_and_gzip_dump(tmp_path, capsys):
    res = tmp_path / "res.yaml"
    res.write_text(yaml.safe_dump({
        "apiVersion": "crd.projectcalico.org/v1", "kind": "CalicoNodeStatus",
        "metadata": {"name": "s1"},
        "spec": {"node": "node1", "classes": ["BGP"], "updatePeriodSeconds": 30}}))
    gz = tmp_path / "protocols.gz"
    gz.write_bytes(gzip.compress((LAB / "v4" / "show_protocols_all.raw").read_bytes()))
    rc = main(["status", "-f", str(res), "--dump4", str(gz), str(LAB / "v4" / "show_status.raw")])
    out = yaml.safe_load(capsys.readouterr().out)
    assert rc == 0 and out["apiVersion"] == "crd.projectcalico.org/v1"
    assert out["spec"]["updatePeriodSeconds"] == 30
    assert [p["peerIP"] for p in out["status"]["bgp"]["peersV4"]] == [
        "10.77.0.2", "10.77.0.3", "10.77.0.250", "10.77.0.251"]
    assert out["status"]["agent"] == {"birdV4": {}, "birdV6": {}}


def test_wide_output_tables(capsys):
    rc = main(["status", "--node", "node1", "--dump4", *_dumps(4), "-o", "wide"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "| 10.77.0.2    | node-to-node mesh | up    | 06:22:13 | Established" in out
    assert "BIRD IPv6: NotReady" in out
    assert "| FIB  | 192.168.1.0/26 | N/A         | blackhole" in out


def test_bad_spec_is_exit_2(capsys):
    assert main(["status", "--node", "Not_A_Node", "--dump4", *_dumps(4)]) == 2
    assert "spec.node" in capsys.readouterr().err
    assert main(["status", "--node", "n", "--classes", "BGP,Foo", "--dump4", *_dumps(4)]) == 2
    assert main(["status", "--bogus-flag"]) == 2


def test_broken_capture_is_exit_2_naming_the_file(tmp_path, capsys):
    cut = tmp_path / "cut.raw"
    cut.write_bytes((LAB / "v4" / "show_route.raw").read_bytes()[:150])
    rc = main(["status", "--node", "n", "--dump4", str(LAB / "v4" / "show_status.raw"), str(cut)])
    assert rc == 2 and str(cut) in capsys.readouterr().err


def test_unreachable_sockets_make_notready_not_an_error(tmp_path, capsys):
    rc = main(["status", "--node", "n", "--socket4", str(tmp_path / "a.ctl"),
               "--socket6", str(tmp_path / "b.ctl"), "-o", "json", "--classes", "Agent,BGP"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["status"]["agent"] == {"birdV4": {"state": "NotReady"},
                                      "birdV6": {"state": "NotReady"}}


def test_main_job_falls_back_to_the_bundled_sample(capsys, monkeypatch):
    monkeypatch.setattr("nodestatus.birdsock.find_socket", lambda fam, c=None: None)
    rc = main(["status", "--sample-fallback", "--node", "node1", "-o", "json"])
    cap = capsys.readouterr()
    assert rc == 0 and "bundled sample" in cap.err
    out = json.loads(cap.out)
    assert out["status"]["agent"]["birdV4"]["routerID"] == "10.77.0.1"
    # the wide view of a capture has no FIB line: there is no live kernel to compare with
    assert main(["status", "--sample-fallback", "--node", "node1", "-o", "wide"]) == 0
    wide = capsys.readouterr().out
    assert "IPv4 BGP status: 2 established" in wide and "FIB check" not in wide


def test_parse_command(tmp_path, capsysbinary):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"1007-10.0.0.0/8 via 1.1.1.1 on e [s 1] * (1)\nnot bird\n")
    rc = main(["parse", str(LAB / "v4" / "show_status.raw"), str(bad)])
    cap = capsysbinary.readouterr()
    lines = [json.loads(x) for x in cap.out.splitlines()]
    assert rc == 2
    assert [l["record"]["record"] for l in lines] == ["status", "route"]  # nothing lost
    assert f"{bad}:2:".encode() in cap.err
