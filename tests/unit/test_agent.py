"""The reporter loop against an in-memory datastore and a fake BIRD: scheduling, writes only
on change, conflicts, outages, size limits, and one BIRD query per round."""
import copy
import itertools
from pathlib import Path

import pytest

from nodestatus.agent import Agent, fit_status
from nodestatus.errors import BirdClosedError
from nodestatus.sinks import ConflictError, Event, NotFoundError, Sink, SinkError, Stored, \
    TooLargeError
from nodestatus.sources import collect_dumps

LAB = Path(__file__).resolve().parent.parent / "data" / "captures" / "calico-lab-node1"


def _dumps(fam):
    return [str(LAB / f"v{fam}" / n) for n in ("show_status.raw", "show_protocols_all.raw",
                                               "show_route.raw")]


LAB_DATA = collect_dumps(_dumps(4), _dumps(6))


class FakeBird:
    def __init__(self):
        self.calls = []
        self.fail = None

    def __call__(self, classes):
        self.calls.append(tuple(classes))
        if self.fail:
            raise self.fail
        return copy.deepcopy(LAB_DATA)


class MemSink(Sink):
    """Datastore in memory: versions are a global counter, events a list."""

    def __init__(self):
        self.docs = {}
        self.version = itertools.count(1)
        self.events = []
        self.down = False
        self.writes = []
        self.max_bytes = 1_500_000
        self.conflict_next = False

    def put(self, name, node="node1", classes=("Agent", "BGP", "Routes"), period=10, status=None):
        doc = {"apiVersion": "projectcalico.org/v3", "kind": "CalicoNodeStatus",
               "metadata": {"name": name},
               "spec": {"node": node, "classes": list(classes), "updatePeriodSeconds": period}}
        if status is not None:
            doc["status"] = status
        v = str(next(self.version))
        kind = "MODIFIED" if name in self.docs else "ADDED"
        self.docs[name] = (v, doc)
        self.events.append(Event(type=kind, name=name, version=v,
                                 stored=Stored(name=name, version=v, raw=copy.deepcopy(doc))))

    def delete(self, name):
        self.docs.pop(name)
        v = str(next(self.version))
        self.events.append(Event(type="DELETED", name=name, version=v))

    def _check(self):
        if self.down:
            raise SinkError("datastore down")

    def list(self):
        self._check()
        self.events.clear()
        return ([Stored(name=n, version=v, raw=copy.deepcopy(d)) for n, (v, d) in self.docs.items()],
                str(next(self.version)))

    def watch(self, since, timeout=None):
        self._check()
        while self.events:
            yield self.events.pop(0)

    def get(self, name):
        self._check()
        if name not in self.docs:
            raise NotFoundError(name)
        v, d = self.docs[name]
        return Stored(name=name, version=v, raw=copy.deepcopy(d))

    def write_status(self, stored, status):
        self._check()
        v, d = self.docs.get(stored.name, (None, None))
        if d is None:
            raise NotFoundError(stored.name)
        if self.conflict_next:
            self.conflict_next = False
            self.put(stored.name, status={"foreign": True})
            raise ConflictError("someone else wrote")
        if v != stored.version:
            raise ConflictError("stale version")
        doc = copy.deepcopy(stored.raw)
        doc["status"] = status
        import json
        if len(json.dumps(doc)) > self.max_bytes + 10_000:
            raise TooLargeError("request is too large")
        nv = str(next(self.version))
        self.docs[stored.name] = (nv, doc)
        self.writes.append((stored.name, doc))
        return Stored(name=stored.name, version=nv, raw=doc)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def world():
    sink, bird, clock = MemSink(), FakeBird(), Clock()
    agent = Agent(sink, "node1", bird, clock=clock)
    return sink, bird, clock, agent


def test_reports_own_node_only_and_shares_one_query(world):
    sink, bird, clock, agent = world
    sink.put("a", classes=("BGP",))
    sink.put("b", classes=("Agent", "Routes"))
    sink.put("other", node="node2")
    agent.resync()
    assert agent.report_round() == 2
    assert bird.calls == [("Agent", "BGP", "Routes")]           # one query for both
    assert {n for n, _ in sink.writes} == {"a", "b"}
    a = sink.docs["a"][1]
    assert a["status"]["bgp"]["numberEstablishedV4"] == 2
    assert a["status"]["lastUpdated"].endswith("Z")
    assert "status" not in sink.docs["other"][1]                # another node: untouched
    assert sink.docs["a"][1]["spec"] == {"node": "node1", "classes": ["BGP"],
                                         "updatePeriodSeconds": 10}


def test_period_and_write_only_on_change(world):
    sink, bird, clock, agent = world
    sink.put("a", period=10)
    agent.resync()
    agent.report_round()
    assert len(sink.writes) == 1
    clock.t += 5
    assert agent.report_round() == 0 and len(bird.calls) == 1  # not due yet
    clock.t += 5
    assert agent.report_round() == 0                            # due, asked, nothing changed
    assert len(bird.calls) == 2 and len(sink.writes) == 1
    LAB_DATA[0].status.router_id = "10.77.0.99"
    try:
        clock.t += 10
        assert agent.report_round() == 1
    finally:
        LAB_DATA[0].status.router_id = "10.77.0.1"
    assert sink.docs["a"][1]["status"]["agent"]["birdV4"]["routerID"] == "10.77.0.99"


def test_period_zero_reports_once(world):
    sink, bird, clock, agent = world
    sink.put("a", period=0)
    agent.resync()
    agent.report_round()
    clock.t += 100000
    assert agent.report_round() == 0 and len(bird.calls) == 1


def test_spec_change_reports_at_once_and_delete_or_move_stops(world):
    sink, bird, clock, agent = world
    sink.put("a", classes=("BGP",), period=3600)
    agent.resync()
    agent.report_round()
    sink.put("a", classes=("Agent",), period=3600)                  # spec changed
    for ev in sink.watch("0"):
        agent.on_event(ev)
    assert agent.report_round() == 1
    assert sink.docs["a"][1]["status"]["agent"]["birdV4"]["state"] == "Ready"
    sink.put("a", node="node2", period=3600)                        # moved away
    for ev in sink.watch("0"):
        agent.on_event(ev)
    assert "a" not in agent.reporters
    sink.put("b", period=3600)
    for ev in sink.watch("0"):
        agent.on_event(ev)
    sink.delete("b")
    for ev in sink.watch("0"):
        agent.on_event(ev)
    assert agent.reporters == {}


def test_own_write_echo_does_not_reschedule(world):
    sink, bird, clock, agent = world
    sink.put("a", period=60)
    agent.resync()
    agent.report_round()
    # the datastore echoes our write as MODIFIED with a new version: keep schedule, new version
    v, doc = sink.docs["a"]
    agent.on_event(Event(type="MODIFIED", name="a", version=v,
                         stored=Stored(name="a", version=v, raw=doc)))
    assert agent.reporters["a"].stored.version == v
    assert agent.report_round() == 0


def test_conflict_rereads_and_retries(world):
    sink, bird, clock, agent = world
    sink.put("a")
    agent.resync()
    sink.conflict_next = True
    assert agent.report_round() == 0
    assert sink.docs["a"][1]["status"] == {"foreign": True}
    clock.t += 1.5
    assert agent.report_round() == 1                # retried with the re-read version
    assert "foreign" not in sink.docs["a"][1]["status"]


def test_bird_failure_writes_nothing(world):
    sink, bird, clock, agent = world
    sink.put("a")
    agent.resync()
    bird.fail = BirdClosedError("closed mid-reply", socket="/x")
    assert agent.report_round() == 0 and sink.writes == []
    bird.fail = None
    clock.t += 60
    assert agent.report_round() == 1


def test_datastore_outage_backs_off_then_resyncs(world):
    sink, bird, clock, agent = world
    sink.put("a")
    agent.resync()
    sink.down = True
    assert agent.report_round() == 0
    r = agent.reporters["a"]
    assert r.failures == 1 and r.next_due > clock.t
    sink.down = False
    sink.put("b")                       # created while we were away: found by the relist
    agent.resync()
    clock.t += 60
    assert agent.report_round() == 2


def test_invalid_resource_is_skipped_not_fatal(world):
    sink, bird, clock, agent = world
    sink.put("good")
    sink.put("bad", classes=("BGP", "Nope"))
    sink.docs["worse"] = ("77", {"apiVersion": "projectcalico.org/v3", "kind": "CalicoNodeStatus",
                                 "metadata": {"name": "worse"}, "spec": "not a spec"})
    agent.resync()
    assert set(agent.reporters) == {"good"}
    assert agent.report_round() == 1


def test_too_large_status_keeps_agent_bgp_and_fib_first():
    raw = {"apiVersion": "projectcalico.org/v3", "kind": "CalicoNodeStatus",
           "metadata": {"name": "a"}, "spec": {"node": "n", "classes": ["Routes"],
                                               "updatePeriodSeconds": 1}}
    route = lambda t, i: {"type": t, "destination": f"10.{i >> 8}.{i & 255}.0/24",
                          "gateway": "10.0.0.1", "interface": "eth0",
                          "learnedFrom": {"sourceType": "NodeMesh", "peerIP": "10.0.0.1"}}
    status = {"agent": {"birdV4": {"state": "Ready"}}, "bgp": {"numberEstablishedV4": 1},
              "routes": {"routesV4": [route("RIB", i) for i in range(500)] +
                         [route("FIB", i) for i in range(500)]}}
    fitted, left = fit_status(raw, status, 40_000)
    import json
    assert len(json.dumps(dict(raw, status=fitted))) <= 40_000
    kept = fitted["routes"]["routesV4"]
    assert left == 1000 - len(kept) and 0 < len(kept) < 1000
    assert all(r["type"] == "FIB" for r in kept)                 # FIB first
    assert fitted["agent"] == status["agent"] and fitted["bgp"] == status["bgp"]
    same, none = fit_status(raw, status, 10_000_000)
    assert same is status and none == 0


def test_run_once(world):
    sink, bird, clock, agent = world
    sink.put("a", period=0)
    agent.run(once=True)
    assert len(sink.writes) == 1


def test_run_once_reports_failure(world):
    sink, bird, clock, agent = world
    sink.put("a", period=0)
    bird.fail = BirdClosedError("closed mid-reply", socket="/x")
    assert agent.run(once=True) is False and sink.writes == []


def test_late_event_does_not_replace_a_newer_read(world):
    sink, bird, clock, agent = world
    sink.put("a", period=60)
    agent.resync()
    agent.report_round()
    newest = agent.reporters["a"].stored.version
    stale = Stored(name="a", version="1", raw=copy.deepcopy(sink.docs["a"][1]))
    agent.on_event(Event(type="MODIFIED", name="a", version="1", stored=stale))
    assert agent.reporters["a"].stored.version == newest


def test_status_too_large_even_without_routes_stops_retrying(world):
    sink, bird, clock, agent = world
    sink.put("a", period=30)
    agent.resync()
    sink.max_bytes = 4096
    real = sink.write_status
    sink.write_status = lambda stored, status: (_ for _ in ()).throw(TooLargeError("too large"))
    assert agent.report_round() == 0
    assert agent.reporters["a"].next_due == clock.t + 30       # not every second
    sink.write_status = real
