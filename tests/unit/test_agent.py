"""The reporter loop against an in-memory datastore and a fake BIRD: scheduling, writes only
on change, conflicts, outages, size limits, and one BIRD query per round."""
import copy
import itertools
from pathlib import Path

import pytest

import datetime
import logging
import random

from nodestatus.agent import CONFLICT_ATTEMPTS, FIGHT_AFTER, Agent, backoff_delay, fit_status
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


def test_an_unchanged_status_is_refreshed_once_a_period():
    """The heartbeat: a round finding the status unchanged for half its period writes it
    again with a new lastUpdated (`nodestatus cluster` calls two periods stale); a round
    sooner than that (a spec change) does not, nor does period 0."""
    sink, bird, clock = MemSink(), FakeBird(), Clock()
    wall = Clock()
    wall.t = 1_800_000_000.0
    agent = Agent(sink, "node1", bird, clock=clock, wall=wall)
    sink.put("a", period=10)
    sink.put("once", period=0)
    agent.resync()
    assert agent.report_round() == 2
    first = sink.docs["a"][1]["status"]
    assert first["lastUpdated"] == "2027-01-15T08:00:00Z"
    clock.t += 10
    wall.t += 4.9                                # a slow clock: not half a period yet
    assert agent.report_round() == 0
    clock.t += 10
    wall.t += 10
    assert agent.report_round() == 1 and len(sink.writes) == 3
    again = sink.docs["a"][1]["status"]
    assert again["lastUpdated"] == "2027-01-15T08:00:14Z"
    assert {k: v for k, v in again.items() if k != "lastUpdated"} == \
        {k: v for k, v in first.items() if k != "lastUpdated"}
    assert sink.docs["once"][1]["status"]["lastUpdated"] == "2027-01-15T08:00:00Z"


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


def test_conflict_rereads_rebuilds_and_writes_in_the_same_round(world):
    sink, bird, clock, agent = world
    sink.put("a")
    agent.resync()
    sink.conflict_next = True
    assert agent.report_round() == 1                # re-read, rebuilt, written: one round
    assert len(bird.calls) == 1                     # from the same BIRD answer
    assert "foreign" not in sink.docs["a"][1]["status"]
    assert sink.docs["a"][1]["status"]["agent"]["birdV4"]["state"] == "Ready"
    assert agent.unreported() == []


def test_conflict_on_every_attempt_is_bounded_then_backs_off(world):
    sink, bird, clock, agent = world
    sink.put("a", period=0)
    agent.resync()
    attempts = []

    def always_conflict(stored, status):
        attempts.append(stored.version)
        sink.put("a", period=0, status={"other": len(attempts)})   # another writer each time
        raise ConflictError("changed")

    sink.write_status = always_conflict
    assert agent.report_round() == 0
    assert len(attempts) == CONFLICT_ATTEMPTS
    assert len(set(attempts)) == CONFLICT_ATTEMPTS   # each attempt with the re-read version
    r = agent.reporters["a"]
    assert r.failures == 1 and agent.unreported() == ["a"]
    assert clock.t + 0.5 <= r.next_due <= clock.t + 2.0   # jittered backoff, not the period


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


# -- another writer (calico-node's own reporter) -------------------------------------------
def _other_writer_after_each_write(sink, status):
    """Wrap write_status: right after each of our writes, someone writes another status."""
    real = sink.write_status
    n = []

    def write(stored, st):
        out = real(stored, st)
        n.append(1)
        sink.put(stored.name, status=dict(status, lastUpdated=f"t{len(n)}"))
        return out

    sink.write_status = write
    return n


def _drain(sink, agent):
    for ev in sink.watch("0"):
        agent.on_event(ev)


def _fight_warnings(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING
            and r.getMessage().startswith("another writer keeps changing")]


def test_another_writer_is_warned_once_and_not_fought(world, caplog):
    sink, bird, clock, agent = world
    caplog.set_level(logging.INFO, logger="nodestatus")
    sink.put("a", period=10)
    agent.resync()
    ours = _other_writer_after_each_write(sink, {"agent": {"birdV4": {"state": "Theirs"}}})
    for i in range(FIGHT_AFTER + 1):
        assert agent.report_round() == 1, i       # their status differs: ours is written
        _drain(sink, agent)
        clock.t += 10
    warned = _fight_warnings(caplog)
    assert len(warned) == 1 and agent.reporters["a"].contended
    assert warned[0].fields["resource"] == "a"
    assert "calico-node" in warned[0].fields["likely_cause"]
    # contended: a conflict is not retried in the round; next try is one period later
    sink.conflict_next = True
    attempts = len(ours)
    assert agent.report_round() == 0 and len(ours) == attempts
    r = agent.reporters["a"]
    assert r.next_due == clock.t + 10 and agent.unreported() == ["a"]
    clock.t += 5
    assert agent.report_round() == 0               # not before its period
    clock.t += 5
    assert agent.report_round() == 1
    _drain(sink, agent)
    assert len(_fight_warnings(caplog)) == 1       # one warning, not one per round


def test_fight_ends_when_the_other_writer_stops(world, caplog):
    sink, bird, clock, agent = world
    caplog.set_level(logging.INFO, logger="nodestatus")
    sink.put("a", period=10)
    agent.resync()
    real = sink.write_status
    _other_writer_after_each_write(sink, {"foreign": True})
    for _ in range(FIGHT_AFTER + 1):
        agent.report_round()
        _drain(sink, agent)
        clock.t += 10
    assert agent.reporters["a"].contended
    sink.write_status = real                      # the other reporter was turned off
    agent.report_round()                          # overwrite its last status once
    _drain(sink, agent)
    clock.t += 10
    LAB_DATA[0].status.router_id = "10.77.0.99"   # a real change: written, no one else wrote
    try:
        assert agent.report_round() == 1
    finally:
        LAB_DATA[0].status.router_id = "10.77.0.1"
    assert not agent.reporters["a"].contended
    assert any(r.getMessage() == "no other writer seen since the last write"
               for r in caplog.records)


def test_spec_changes_by_others_are_not_a_fight(world, caplog):
    sink, bird, clock, agent = world
    sink.put("a", period=10, classes=("Agent", "BGP", "Routes"))
    agent.resync()
    for classes in [("BGP",), ("Agent",), ("Routes",), ("BGP", "Agent")] * 2:
        agent.report_round()
        _drain(sink, agent)
        v, doc = sink.docs["a"]
        sink.put("a", period=10, classes=classes, status=doc["status"])   # kubectl edit
        _drain(sink, agent)
    assert agent.reporters["a"].fights == 0 and not _fight_warnings(caplog)


def test_an_equal_status_from_another_writer_is_left_alone(world):
    """calico-node writing the same status (another lastUpdated): nothing to write."""
    sink, bird, clock, agent = world
    sink.put("a", period=10)
    agent.resync()
    agent.report_round()
    _drain(sink, agent)
    for i in range(2 * FIGHT_AFTER):
        v, doc = sink.docs["a"]
        sink.put("a", period=10, status=dict(doc["status"], lastUpdated=f"theirs {i}"))
        _drain(sink, agent)
        clock.t += 10
        assert agent.report_round() == 0
    assert len(sink.writes) == 1 and not agent.reporters["a"].contended


# -- selector, --once ---------------------------------------------------------------------
def test_selector_limits_the_resources_served(world):
    sink, bird, clock, _ = world
    from nodestatus.sinks.selector import Selector

    agent = Agent(sink, "node1", bird, clock=clock,
                  selector=Selector.parse("reporter in (nodestatus), !calico"))
    sink.put("calicos", period=10)
    sink.put("mine", period=10)
    sink.docs["mine"][1]["metadata"]["labels"] = {"reporter": "nodestatus"}
    sink.put("vetoed", period=10)
    sink.docs["vetoed"][1]["metadata"]["labels"] = {"reporter": "nodestatus", "calico": ""}
    agent.resync()
    assert set(agent.reporters) == {"mine"}
    assert agent.report_round() == 1 and [n for n, _ in sink.writes] == ["mine"]
    # labels changed so it no longer matches: its reporter stops
    v, doc = sink.docs["mine"]
    doc = copy.deepcopy(doc)
    doc["metadata"]["labels"] = {"reporter": "calico-node"}
    sink.events.append(Event(type="MODIFIED", name="mine", version="99",
                             stored=Stored(name="mine", version="99", raw=doc)))
    _drain(sink, agent)
    assert agent.reporters == {}


def test_once_counts_invalid_resources_of_this_node_as_not_reported(world, caplog):
    sink, bird, clock, agent = world
    sink.put("good", period=0)
    sink.put("bad", classes=("BGP", "Nope"), period=0)
    sink.put("elsewhere-bad", node="node2", classes=("Nope",), period=0)
    assert agent.run(once=True) is False
    assert agent.unreported() == ["bad"] and [n for n, _ in sink.writes] == ["good"]
    err, = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert err.fields["resources"] == ["bad"]


def test_once_with_a_conflict_on_the_first_write_succeeds(world):
    sink, bird, clock, agent = world
    sink.put("a", period=0)
    sink.conflict_next = True
    assert agent.run(once=True) is True
    assert "foreign" not in sink.docs["a"][1]["status"]


# -- backoff jitter ------------------------------------------------------------------------
def test_backoff_is_jittered_and_capped():
    rng = random.Random(7)
    for failures in range(1, 12):
        full = min(60.0, 2.0 ** failures)
        delays = [backoff_delay(failures, rng) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 4         # spread, not one value
    # a thousand agents failing together come back spread over the window
    starts = sorted(backoff_delay(5, random.Random(i)) for i in range(1000))
    assert starts[0] >= 16 and starts[-1] <= 32 and starts[500] - starts[100] > 4


def test_write_failure_backoff_differs_between_agents(world):
    sink, bird, clock, _ = world
    sink.put("a")
    due = []
    for seed in range(5):
        agent = Agent(sink, "node1", bird, clock=clock, rng=random.Random(seed))
        agent.resync()
        sink.down = True
        agent.report_round()
        sink.down = False
        due.append(agent.reporters["a"].next_due)
    assert len(set(due)) == 5


# -- BIRD's boot time jitter ---------------------------------------------------------------
def test_daemon_time_jitter_of_a_second_is_no_change(world):
    """BIRD 1.6 prints its boot time one second apart from query to query (monotonic clock
    + real time, both in whole seconds): not a change to write. A real restart is."""
    sink, bird, clock, agent = world
    sink.put("a", classes=("Agent",), period=1)
    agent.resync()
    status = LAB_DATA[0].status
    saved = (status.last_reboot, status.last_reconfiguration)
    assert agent.report_round() == 1
    written = sink.docs["a"][1]["status"]["agent"]["birdV4"]["lastBootTime"]
    assert written == saved[0]
    boot = datetime.datetime.strptime(saved[0], "%Y-%m-%d %H:%M:%S")
    try:
        for jitter in (1, -1, 1):
            status.last_reboot = status.last_reconfiguration = \
                (boot + datetime.timedelta(seconds=jitter)).strftime("%Y-%m-%d %H:%M:%S")
            clock.t += 1
            assert agent.report_round() == 0, jitter
        assert len(bird.calls) == 4
        status.last_reboot = (boot + datetime.timedelta(seconds=90)).strftime(
            "%Y-%m-%d %H:%M:%S")
        clock.t += 1
        assert agent.report_round() == 1
        got = sink.docs["a"][1]["status"]["agent"]["birdV4"]
        assert got["lastBootTime"] == status.last_reboot != written
        assert got["lastReconfigurationTime"] == saved[1]          # kept: the same instant
    finally:
        status.last_reboot, status.last_reconfiguration = saved


def test_trimming_does_not_depend_on_the_version_length():
    raw = {"apiVersion": "projectcalico.org/v3", "kind": "CalicoNodeStatus",
           "metadata": {"name": "a"}, "spec": {"node": "n", "classes": ["Routes"],
                                               "updatePeriodSeconds": 1}}
    routes = [{"type": "FIB", "destination": f"10.0.{i}.0/24", "gateway": "N/A",
               "interface": "blackhole", "learnedFrom": {"sourceType": "Static"}}
              for i in range(200)]
    status = {"agent": {}, "routes": {"routesV4": routes}}
    results = set()
    for budget in range(6000, 6200):              # every byte offset of the last route
        kept = []
        for version in ("9", "10", "99999999"):
            doc = dict(raw, metadata=dict(raw["metadata"], resourceVersion=version))
            kept.append(len(fit_status(doc, status, budget)[0]["routes"]["routesV4"]))
        results.add(len(set(kept)))
    assert results == {1}


# -- health --------------------------------------------------------------------------------
def test_liveness_and_readiness(world):
    sink, bird, clock, _ = world
    agent = Agent(sink, "node1", bird, clock=clock, probe_every=10, stall_after=100)
    assert agent.liveness()[0] and not agent.readiness()[0]      # nothing answered yet
    sink.put("a", period=0)
    agent.resync()
    ok, detail = agent.readiness()
    assert not ok and detail["bird_answered_seconds_ago"] is None
    agent.report_round()
    assert agent.readiness()[0]
    clock.t += 31                                                # window: 30 s
    ok, detail = agent.readiness()
    assert not ok and detail["datastore_answered_seconds_ago"] == 31
    agent.resync()
    agent._probe_bird()                                          # idle: `show status` only
    assert bird.calls[-1] == () and agent.readiness()[0]
    clock.t += 101
    ok, detail = agent.liveness()
    assert not ok and detail["loop_late_seconds"] == 132          # since the start
    agent._sleep(0)                                              # the loop came round
    assert agent.liveness()[0]


def test_bird_unreachable_is_not_ready(world):
    sink, bird, clock, agent = world
    sink.put("a", period=0)
    agent.resync()
    data = copy.deepcopy(LAB_DATA)
    for fam in data:
        fam.reachable = False
    agent.collect = lambda classes: data
    agent.report_round()
    assert not agent.readiness()[0] and agent.readiness()[1]["bird_answered_seconds_ago"] is None
