"""EtcdSink against a real etcd (Debian etcd-server 3.4): Calico's key layout and JSON as
calicoctl writes it, list/get, watch events, CAS status writes read back independently
(etcdctl, else the raw JSON gateway), conflicts, the request size limit, an etcd restart in
the middle of a watch, and a compacted revision."""
from __future__ import annotations

import json
import threading
import time

import pytest

from nodestatus.sinks import (ConflictError, NotFoundError, SinkError, TooLargeError,
                              WatchExpiredError)
from nodestatus.sinks.etcd import ETCD_MAX_REQUEST_BYTES, PREFIX, REQUEST_OVERHEAD, EtcdSink

from .fixtures.etcd import EtcdServer, etcd, etcd_factory, free_port  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.etcd]


def resource(name: str, node: str = "node-1", **extra) -> dict:
    """The value calicoctl stores: the full v3 resource, no resourceVersion in metadata."""
    doc = {
        "kind": "CalicoNodeStatus",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": name, "uid": f"uid-{name}",
                     "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"classes": ["Agent", "BGP", "Routes"], "node": node,
                 "updatePeriodSeconds": 10},
    }
    doc.update(extra)
    return doc


def status(n_routes: int = 1) -> dict:
    return {
        "lastUpdated": "2024-05-01T10:00:05Z",
        "agent": {"birdV4": {"state": "Ready", "version": "v0.3.3+birdv1.6.8",
                             "routerID": "10.0.0.1"}, "birdV6": {"state": "NotReady"}},
        "bgp": {"numberEstablishedV4": 1, "numberNotEstablishedV4": 0,
                "numberEstablishedV6": 0, "numberNotEstablishedV6": 0,
                "peersV4": [{"peerIP": "10.0.0.2", "type": "NodeMesh",
                             "state": "Established", "since": "10:00:00"}]},
        "routes": {"routesV4": [
            {"type": "FIB", "destination": f"10.{i // 256 % 256}.{i % 256}.0/24",
             "gateway": "10.0.0.2", "interface": "eth0",
             "learnedFrom": {"sourceType": "NodeMesh", "peerIP": "10.0.0.2"}}
            for i in range(n_routes)]},
    }


def drain(sink: EtcdSink, since: str, want: int, timeout: float = 10.0):
    """Up to ``want`` events after ``since`` (fewer when ``timeout`` passes idle)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for ev in sink.watch(since, timeout=0.5):
            got.append(ev)
            since = ev.version
            if len(got) >= want:
                break
    return got


@pytest.fixture
def sink(etcd: EtcdServer):
    s = EtcdSink(etcd.url, timeout=5.0)
    try:
        yield s
    finally:
        s.close()


def test_list_and_get_calico_layout(etcd: EtcdServer, sink: EtcdSink):
    r1 = etcd.put(PREFIX + "status-b", resource("status-b"))
    r2 = etcd.put(PREFIX + "status-a", resource("status-a", node="node-2"))
    # neighbours that are not CalicoNodeStatus resources
    etcd.put("/calico/resources/v3/projectcalico.org/nodes/node-1", {"kind": "Node"})
    etcd.put(PREFIX.rstrip("/") + "x", "not ours")
    items, rev = sink.list()
    assert [s.name for s in items] == ["status-a", "status-b"]
    assert [s.version for s in items] == [str(r2), str(r1)]
    assert rev == str(etcd.revision())
    a = items[0]
    assert a.raw["spec"] == resource("status-a", node="node-2")["spec"]
    assert a.raw["metadata"] == {"name": "status-a", "uid": "uid-status-a",
                                 "creationTimestamp": "2024-05-01T10:00:00Z",
                                 "resourceVersion": str(r2)}  # from the revision, like calicoctl
    got = sink.get("status-b")
    assert got.version == str(etcd.read(PREFIX + "status-b")["mod_revision"]) == str(r1)
    assert got.raw["spec"]["node"] == "node-1"
    with pytest.raises(NotFoundError):
        sink.get("missing")


def test_list_pages_at_one_revision(etcd: EtcdServer, sink: EtcdSink, monkeypatch):
    import nodestatus.sinks.etcd as mod

    monkeypatch.setattr(mod, "_PAGE", 3)
    for i in range(10):
        etcd.put(PREFIX + f"s{i:02d}", resource(f"s{i:02d}"))
    items, rev = sink.list()
    assert [s.name for s in items] == [f"s{i:02d}" for i in range(10)]
    assert rev == str(etcd.revision())


def test_empty_list_and_bad_values(etcd: EtcdServer, sink: EtcdSink):
    items, rev = sink.list()
    assert items == [] and int(rev) >= 1
    etcd.put(PREFIX + "broken", b"{not json")
    items, _ = sink.list()
    # passed on (the agent's validation rejects and logs it), never an exception here
    assert [(s.name, s.raw) for s in items] == [("broken", {})]


def test_watch_create_update_delete(etcd: EtcdServer, sink: EtcdSink):
    _, rev = sink.list()
    t0 = time.monotonic()
    assert list(sink.watch(rev, timeout=0.3)) == []      # nothing: returns after the timeout
    assert 0.25 <= time.monotonic() - t0 < 5
    r_add = etcd.put(PREFIX + "w1", resource("w1"))
    r_mod = etcd.put(PREFIX + "w1", resource("w1", node="node-9"))
    r_del = etcd.delete(PREFIX + "w1")
    etcd.put("/calico/resources/v3/projectcalico.org/nodes/x", {"kind": "Node"})  # not ours
    events = drain(sink, rev, 3)
    assert [(e.type, e.name, e.version) for e in events] == [
        ("ADDED", "w1", str(r_add)), ("MODIFIED", "w1", str(r_mod)),
        ("DELETED", "w1", str(r_del))]
    assert events[0].stored.raw["spec"]["node"] == "node-1"
    assert events[1].stored.raw["spec"]["node"] == "node-9"
    assert events[1].stored.version == str(r_mod)
    assert events[1].stored.raw["metadata"]["resourceVersion"] == str(r_mod)
    assert events[2].stored is None
    # re-created after a delete: ADDED again
    r_again = etcd.put(PREFIX + "w1", resource("w1"))
    assert [(e.type, e.version) for e in drain(sink, events[-1].version, 1)] == [
        ("ADDED", str(r_again))]


def test_watch_from_an_older_revision_replays(etcd: EtcdServer, sink: EtcdSink):
    _, rev = sink.list()
    r1 = etcd.put(PREFIX + "a", resource("a"))
    r2 = etcd.put(PREFIX + "b", resource("b"))
    assert [e.version for e in drain(sink, rev, 2)] == [str(r1), str(r2)]
    # asking again from the start opens a new stream and replays the same history
    assert [e.version for e in drain(sink, rev, 2)] == [str(r1), str(r2)]
    assert [e.version for e in drain(sink, str(r1), 1)] == [str(r2)]


def test_write_status_round_trip(etcd: EtcdServer, sink: EtcdSink):
    doc = resource("rt", extra={"keep": ["me"]})
    doc["metadata"]["labels"] = {"team": "net"}
    doc["metadata"]["resourceVersion"] = "1"   # a value that carries one: stripped on write
    etcd.put(PREFIX + "rt", doc)
    stored = sink.get("rt")
    new = sink.write_status(stored, status(3))

    got = etcd.read(PREFIX + "rt")               # etcdctl get -w json (or the raw gateway)
    assert str(got["mod_revision"]) == new.version
    assert int(new.version) > int(stored.version)
    value = json.loads(got["value"])
    assert value["status"] == status(3)
    assert value["spec"] == doc["spec"]
    expected_meta = {k: v for k, v in doc["metadata"].items() if k != "resourceVersion"}
    assert value["metadata"] == expected_meta    # unchanged, no resourceVersion stored
    assert value["apiVersion"] == "projectcalico.org/v3"
    assert value["kind"] == "CalicoNodeStatus"
    assert value["extra"] == {"keep": ["me"]}    # fields we do not model survive
    assert b"\n" not in got["value"]             # compact JSON, like calicoctl's
    assert new.raw["metadata"]["resourceVersion"] == new.version
    assert new.raw["status"] == status(3)

    # the returned Stored is good for the next write; the old one is stale
    newer = sink.write_status(new, status(1))
    assert json.loads(etcd.read(PREFIX + "rt")["value"])["status"] == status(1)
    with pytest.raises(ConflictError):
        sink.write_status(new, status(2))
    assert etcd.read(PREFIX + "rt")["mod_revision"] == int(newer.version)


def test_write_status_accepts_structs(etcd: EtcdServer, sink: EtcdSink):
    from nodestatus.resource import CalicoNodeStatusStatus

    etcd.put(PREFIX + "st", resource("st"))
    new = sink.write_status(sink.get("st"), CalicoNodeStatusStatus(last_updated="x"))
    value = etcd.read_json(PREFIX + "st")
    assert value["status"]["lastUpdated"] == "x"
    assert value["status"]["bgp"]["numberEstablishedV4"] == 0
    assert new.raw["status"] == value["status"]


def test_conflicting_writer(etcd: EtcdServer, sink: EtcdSink):
    etcd.put(PREFIX + "c", resource("c"))
    stored = sink.get("c")
    # someone else (calicoctl) changes the spec between our read and our write
    theirs = resource("c", node="node-1")
    theirs["spec"]["updatePeriodSeconds"] = 30
    r = etcd.put(PREFIX + "c", theirs)
    with pytest.raises(ConflictError) as err:
        sink.write_status(stored, status())
    assert str(r) in str(err.value)
    assert json.loads(etcd.read(PREFIX + "c")["value"]) == theirs   # untouched
    # re-read and retry: their spec is kept
    sink.write_status(sink.get("c"), status())
    value = etcd.read_json(PREFIX + "c")
    assert value["spec"]["updatePeriodSeconds"] == 30 and value["status"] == status()
    # deleted meanwhile: a conflict too (the re-read then says NotFoundError)
    stored = sink.get("c")
    etcd.delete(PREFIX + "c")
    with pytest.raises(ConflictError, match="deleted"):
        sink.write_status(stored, status())
    assert etcd.read(PREFIX + "c") is None
    with pytest.raises(NotFoundError):
        sink.get("c")


def test_too_large_status(etcd_factory, tmp_path):
    limit = 64 * 1024
    server = etcd_factory(max_request_bytes=limit)
    server.put(PREFIX + "big", resource("big"))
    before = server.read(PREFIX + "big")

    # a sink that assumes etcd's default limit: etcd itself refuses
    naive = EtcdSink(server.url)
    assert naive.max_bytes == ETCD_MAX_REQUEST_BYTES - REQUEST_OVERHEAD
    stored = naive.get("big")
    with pytest.raises(TooLargeError, match="request is too large"):
        naive.write_status(stored, status(1000))           # ~130 KB: over etcd's check
    with pytest.raises(TooLargeError, match="larger than max"):
        naive.write_status(stored, status(6000))           # over gRPC's limit (+512 KiB)
    assert server.read(PREFIX + "big") == before             # nothing written
    naive.close()

    # told the limit: max_bytes fits, one byte more than the request limit is not even sent
    sink = EtcdSink(server.url, max_request_bytes=limit)
    assert sink.max_bytes == limit - REQUEST_OVERHEAD
    base = len(json.dumps(dict(stored.raw, status={"pad": ""}), separators=(",", ":")))
    # metadata.resourceVersion is stripped on write: account for it
    base -= len(',"resourceVersion":""') + len(stored.version)
    fits = {"pad": "x" * (sink.max_bytes - base)}
    new = sink.write_status(stored, fits)
    assert len(server.read(PREFIX + "big")["value"]) == sink.max_bytes
    with pytest.raises(TooLargeError, match="not sent"):
        sink.write_status(new, {"pad": "x" * limit})
    with pytest.raises(TooLargeError):
        sink.write_status(new, status(1000))
    assert server.read(PREFIX + "big")["mod_revision"] == int(new.version)
    # the too-large error did not wedge anything: a normal write goes through
    sink.write_status(new, status(10))
    assert server.read_json(PREFIX + "big")["status"] == status(10)
    sink.close()


def test_restart_during_watch(etcd: EtcdServer, sink: EtcdSink):
    etcd.put(PREFIX + "r", resource("r"))
    items, rev = sink.list()
    outcome = {}

    def watcher():
        try:
            outcome["events"] = [e for e in sink.watch(rev, timeout=30)]
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome["error"] = exc
            outcome["at"] = time.monotonic()

    th = threading.Thread(target=watcher, daemon=True)
    th.start()
    time.sleep(0.5)
    killed = time.monotonic()
    etcd.stop(kill=True)
    th.join(10)
    assert not th.is_alive(), "watch did not notice that etcd went away"
    assert isinstance(outcome.get("error"), SinkError), outcome
    assert not isinstance(outcome["error"], WatchExpiredError)
    assert outcome["at"] - killed < 5

    # while it is down: every call is a SinkError, none hangs
    t0 = time.monotonic()
    for call in (sink.list, lambda: sink.get("r"), lambda: list(sink.watch(rev, timeout=1)),
                 lambda: sink.write_status(items[0], status())):
        with pytest.raises(SinkError):
            call()
    assert time.monotonic() - t0 < 20

    etcd.start()
    r_mod = etcd.put(PREFIX + "r", resource("r", node="node-3"))
    r_new = etcd.put(PREFIX + "r2", resource("r2"))
    # resuming from the revision seen before the outage delivers what changed meanwhile
    assert [(e.type, e.name, e.version) for e in drain(sink, rev, 2)] == [
        ("MODIFIED", "r", str(r_mod)), ("ADDED", "r2", str(r_new))]
    # and a fresh list + watch works as before
    items, rev2 = sink.list()
    assert {s.name: s.version for s in items} == {"r": str(r_mod), "r2": str(r_new)}
    r_del = etcd.delete(PREFIX + "r2")
    assert [(e.type, e.version) for e in drain(sink, rev2, 1)] == [("DELETED", str(r_del))]
    new = sink.write_status(sink.get("r"), status())
    assert etcd.read(PREFIX + "r")["mod_revision"] == int(new.version)


def test_compacted_revision(etcd: EtcdServer, sink: EtcdSink):
    _, rev = sink.list()
    for i in range(5):
        etcd.put(PREFIX + "k", resource("k", node=f"node-{i}"))
    etcd.compact(etcd.revision())
    with pytest.raises(WatchExpiredError, match="compacted"):
        list(sink.watch(rev, timeout=5))
    # list again and watch from there: fine
    items, rev = sink.list()
    assert items[0].raw["spec"]["node"] == "node-4"
    r = etcd.delete(PREFIX + "k")
    assert [(e.type, e.version) for e in drain(sink, rev, 1)] == [("DELETED", str(r))]


def test_endpoint_failover_and_env(etcd: EtcdServer):
    dead = f"http://127.0.0.1:{free_port()}"
    env = {"ETCD_ENDPOINTS": f"{dead},{etcd.url}", "NODESTATUS_ETCD_MAX_REQUEST_BYTES": "100000"}
    sink = EtcdSink.from_env(env)
    assert sink.endpoints == [dead, etcd.url]
    assert sink.max_bytes == 100000 - REQUEST_OVERHEAD
    etcd.put(PREFIX + "f", resource("f"))
    items, rev = sink.list()
    assert [s.name for s in items] == ["f"]
    r = etcd.put(PREFIX + "f", resource("f", node="node-2"))
    assert [e.version for e in drain(sink, rev, 1)] == [str(r)]
    sink.close()
    with pytest.raises(SinkError, match="no endpoint reachable"):
        EtcdSink(dead).list()


def test_env_names_as_calicoctl():
    env = {"ETCD_ENDPOINTS": "https://10.0.0.1:2379, https://10.0.0.2:2379",
           "ETCD_CA_CERT_FILE": "/etc/calico/ca.pem", "ETCD_CERT_FILE": "/etc/calico/cert.pem",
           "ETCD_KEY_FILE": "/etc/calico/key.pem", "ETCD_USERNAME": "calico",
           "ETCD_PASSWORD": "secret"}
    sink = EtcdSink.from_env(env)
    assert sink.endpoints == ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
    assert (sink.ca_cert_file, sink.cert_file, sink.key_file) == (
        "/etc/calico/ca.pem", "/etc/calico/cert.pem", "/etc/calico/key.pem")
    assert (sink.username, sink.password) == ("calico", "secret")
    client = sink._clients[0]
    assert client.base_url == "https://10.0.0.1:2379"
    assert client.session.verify == "/etc/calico/ca.pem"
    assert client.session.cert == ("/etc/calico/cert.pem", "/etc/calico/key.pem")
    assert EtcdSink.from_env(env, endpoints="http://127.0.0.1:1").endpoints == [
        "http://127.0.0.1:1"]
    assert EtcdSink.from_env({}).endpoints == ["http://127.0.0.1:2379"]
    with pytest.raises(ValueError):
        EtcdSink.from_env({"ETCD_CERT_FILE": "/c.pem"})
    sink.close()


def test_auth(etcd: EtcdServer):
    etcd.put(PREFIX + "auth", resource("auth"))
    etcd.gateway("auth/role/add", {"name": "root"})
    etcd.gateway("auth/user/add", {"name": "root", "password": "rootpw"})
    etcd.gateway("auth/user/grant", {"user": "root", "role": "root"})
    etcd.gateway("auth/enable", {})
    sink = EtcdSink(etcd.url, username="root", password="rootpw")
    items, rev = sink.list()
    assert [s.name for s in items] == ["auth"]
    sink._token = "bogus-expired-token"            # renewed once when etcd rejects it
    new = sink.write_status(items[0], status())
    assert new.raw["status"] == status()
    sink._token = "bogus-expired-token"
    assert [e.version for e in drain(sink, rev, 1)] == [new.version]
    with pytest.raises(SinkError):
        EtcdSink(etcd.url).list()                  # no credentials: refused
    with pytest.raises(SinkError):
        EtcdSink(etcd.url, username="root", password="wrong").list()
    sink.close()


# -- whole resources and nodes (nodestatus cluster) --------------------------------------------
NODES = "/calico/resources/v3/projectcalico.org/nodes/"


def test_list_nodes_from_calico_node_resources(etcd: EtcdServer, sink: EtcdSink):
    from nodestatus.sinks import NodeInfo

    etcd.put(NODES + "node-a", {"kind": "Node", "apiVersion": "projectcalico.org/v3",
                                "metadata": {"name": "node-a"},
                                "spec": {"bgp": {"ipv4Address": "10.0.0.1/24",
                                                 "ipv6Address": "fd00::1/64"}}})
    etcd.put(NODES + "node-b", {"kind": "Node", "apiVersion": "projectcalico.org/v3",
                                "metadata": {"name": "node-b"},
                                "spec": {"addresses": [{"address": "10.0.0.2/24",
                                                        "type": "CalicoNodeIP"}]}})
    etcd.put(NODES + "node-c", b"not json")
    etcd.put(PREFIX + "a", resource("a"))                 # not a node
    assert sink.list_nodes() == [NodeInfo(name="node-a", ipv4="10.0.0.1", ipv6="fd00::1"),
                                 NodeInfo(name="node-b", ipv4="10.0.0.2"),
                                 NodeInfo(name="node-c")]


def test_create_replace_delete_compare_and_swap(etcd: EtcdServer, sink: EtcdSink):
    doc = resource("req")
    del doc["metadata"]["uid"], doc["metadata"]["creationTimestamp"]
    made = sink.create(doc)
    stored = json.loads(etcd.read(PREFIX + "req")["value"])
    assert stored["metadata"]["uid"] and stored["metadata"]["creationTimestamp"].endswith("Z")
    assert "resourceVersion" not in stored["metadata"]      # as calicoctl keeps it
    with pytest.raises(ConflictError, match="already exists"):
        sink.create(doc)
    changed = dict(made.raw, spec=dict(made.raw["spec"], updatePeriodSeconds=60))
    newer = sink.replace(made, changed)
    assert json.loads(etcd.read(PREFIX + "req")["value"])["spec"]["updatePeriodSeconds"] == 60
    with pytest.raises(ConflictError, match="changed since revision"):
        sink.replace(made, changed)                           # the version read is old
    with pytest.raises(ConflictError, match="not deleted"):
        sink.delete(made)
    assert etcd.read(PREFIX + "req") is not None
    sink.delete(newer)
    assert etcd.read(PREFIX + "req") is None
    with pytest.raises(NotFoundError):
        sink.delete(newer)
