"""The Kubernetes datastore backend (``nodestatus.sinks.kube``) and the ``deploy/`` manifests.

No kube-apiserver can be installed on these machines, so the backend is tested against
``tests/fakes/kube_api.py``: a local HTTP server that answers the calls the official client
makes here (discovery, list, watch stream, get, PUT with 409 on a stale resourceVersion, 410
for a compacted watch, 413 / "request is too large"), in both CRD shapes: Calico's (no
status subresource: the whole object is replaced) and a variant with one. What it does not
model (auth, admission, managedFields, real etcd compaction timing) is untested.
"""
from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("kubernetes")

from nodestatus.sinks import (  # noqa: E402
    ConflictError,
    NotFoundError,
    SinkError,
    TooLargeError,
    WatchExpiredError,
)
from nodestatus.sinks.kube import API_VERSION, GROUP, VERSION, KubeSink  # noqa: E402
from nodestatus.sinks.selector import Selector  # noqa: E402
from fakes.kube_api import PREFIX, FakeKubeAPI  # noqa: E402

SPEC = {"node": "node-1", "classes": ["Agent", "BGP"], "updatePeriodSeconds": 10}


@pytest.fixture
def api(request):
    """Calico's CRD shape; with ``@BOTH_SHAPES`` also the variant with a status subresource."""
    fake = FakeKubeAPI(status_subresource=getattr(request, "param", False)).start()
    yield fake
    fake.stop()


BOTH_SHAPES = pytest.mark.parametrize("api", [False, True], indirect=True,
                                      ids=["calico-crd", "with-status-subresource"])


@pytest.fixture
def sink(api):
    s = KubeSink(host=api.url, request_timeout=5)
    yield s
    s.close()


def _later(delay, fn, *args, **kw):
    t = threading.Timer(delay, fn, args, kw)
    t.start()
    return t


def _first(sink, since, timeout):
    for e in sink.watch(since, timeout=timeout):
        return (e.type, e.name, e.version)
    return None


def _collect(sink, since, timeout):
    return [(e.type, e.name, e.version) for e in sink.watch(since, timeout=timeout)]


# -- reads ----------------------------------------------------------------------------------
def test_list_and_get(api, sink):
    a = api.create("a", SPEC)
    api.create("b", dict(SPEC, node="node-2"), status={"lastUpdated": "x"})
    items, version = sink.list()
    assert [s.name for s in items] == ["a", "b"]
    assert version == str(api.rv)
    assert items[0].version == a["metadata"]["resourceVersion"]
    assert items[0].raw == a and items[0].raw["apiVersion"] == API_VERSION
    assert items[1].raw["status"] == {"lastUpdated": "x"}
    got = sink.get("b")
    assert got.name == "b" and got.raw["spec"]["node"] == "node-2"
    with pytest.raises(NotFoundError):
        sink.get("nope")


def test_list_pages_with_continue(api):
    for i in range(7):
        api.create(f"r{i}", SPEC)
    s = KubeSink(host=api.url, page_size=3)
    items, version = s.list()
    assert [x.name for x in items] == [f"r{i}" for i in range(7)] and version == str(api.rv)
    pages = [q for m, p, q, _ in api.requests if p == PREFIX]
    assert [q.get("continue") for q in pages] == [None, "3", "6"]


def test_bearer_token_sent(api):
    KubeSink(host=api.url, token="s3cret").list()
    assert api.requests[-1][3] == "Bearer s3cret"


def test_kubeconfig_from_environment(api, tmp_path, monkeypatch):
    cfg = api.kubeconfig(tmp_path / "kubeconfig", token="from-kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", cfg)
    api.create("a", SPEC)
    assert [s.name for s in KubeSink().list()[0]] == ["a"]
    assert api.requests[-1][3] == "Bearer from-kubeconfig"


def test_no_configuration_is_a_sink_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(SinkError, match="no usable configuration"):
        KubeSink()


# -- watch ----------------------------------------------------------------------------------
def test_watch_sees_added_modified_deleted(api, sink):
    api.create("a", SPEC)
    _, version = sink.list()

    def changes():
        api.create("b", SPEC)
        api.update("a", spec=dict(SPEC, updatePeriodSeconds=0))
        api.delete("b")

    _later(0.2, changes)
    events = list(sink.watch(version, timeout=2))
    assert [(e.type, e.name) for e in events] == [("ADDED", "b"), ("MODIFIED", "a"),
                                                  ("DELETED", "b")]
    assert [e.version for e in events] == [str(v) for v in range(api.rv - 2, api.rv + 1)]
    assert events[1].stored.raw["spec"]["updatePeriodSeconds"] == 0
    assert events[1].stored.version == events[1].version
    assert events[0].stored.raw["apiVersion"] == API_VERSION
    assert events[2].stored is None
    assert sink.last_version == str(api.rv)


def test_watch_resumes_from_version(api, sink):
    api.create("a", SPEC)
    _, version = sink.list()
    api.update("a", status={"lastUpdated": "t"})   # while nobody watched
    assert _collect(sink, version, 1) == [("MODIFIED", "a", str(api.rv))]


def test_watch_returns_after_idle_timeout(api, sink):
    _, version = sink.list()
    for timeout in (1.0, 0.2):                    # sub-second: not rounded up to 1 s
        t = time.monotonic()
        assert _collect(sink, version, timeout) == []
        assert timeout * 0.9 <= time.monotonic() - t < timeout + 1
    (_, _, q, _), = [r for r in api.requests if r[2].get("watch")]   # one request
    assert q["timeoutSeconds"] == str(sink.watch_window) and q["resourceVersion"] == version
    assert q["allowWatchBookmarks"] == "true"


def test_one_stream_across_polls(api, sink):
    """The agent's loop: watch(revision, short timeout), stop at an event, come back with
    the event's version: all on one watch request, nothing lost in between."""
    _, version = sink.list()
    for i in range(3):
        api.create(f"r{i}", SPEC)
    seen = []
    for _ in range(3):
        for ev in sink.watch(version, timeout=0.5):
            seen.append(ev.name)
            version = ev.version
            break                                 # the agent breaks when a report is due
    assert seen == ["r0", "r1", "r2"] and version == str(api.rv)
    assert _collect(sink, version, 0.2) == []
    assert len([r for r in api.requests if r[2].get("watch")]) == 1
    _collect(sink, "1", 0.2)                      # another version: a new request
    assert [r[2]["resourceVersion"] for r in api.requests if r[2].get("watch")] == \
        [str(api.rv - 3), "1"]


def test_stream_rewatches_after_server_window(api):
    s = KubeSink(host=api.url, watch_window=1)
    _, version = s.list()
    _later(1.5, api.create, "late", SPEC)        # after the first request ended
    try:
        assert _first(s, version, 3) == ("ADDED", "late", str(api.rv))
    finally:
        s.close()
    watches = [q for m, p, q, _ in api.requests if q.get("watch")]
    assert len(watches) >= 2 and watches[1]["resourceVersion"] == version


def test_bookmark_moves_the_resume_version(api):
    """Bookmarks yield nothing, but the stream resumes from them: a compaction past the
    last event then costs no 410."""
    s = KubeSink(host=api.url, watch_window=1)
    _, version = s.list()
    try:
        api.bump(40)                              # other resources written meanwhile
        _later(0.2, api.bookmark)
        assert _collect(s, version, 0.6) == []
        assert s.last_version == str(api.rv) != version
        api.compact()
        _later(1.5, api.create, "after", SPEC)
        assert _first(s, version, 3) == ("ADDED", "after", str(api.rv))
    finally:
        s.close()
    watches = [q for m, p, q, _ in api.requests if q.get("watch")]
    assert watches[1]["resourceVersion"] == str(api.rv - 1)


def test_too_old_version_is_watch_expired(api, sink):
    api.create("a", SPEC)
    _, version = sink.list()
    api.update("a", status={})
    api.compact()
    with pytest.raises(WatchExpiredError, match="too old resource version"):
        list(sink.watch(version, timeout=2))
    items, fresh = sink.list()                    # what the caller does next
    assert _collect(sink, fresh, 1) == []


def test_server_gone_mid_watch_is_sink_error(api, sink):
    _, version = sink.list()
    _later(0.3, api.stop)
    t = time.monotonic()
    with pytest.raises(SinkError) as exc:
        list(sink.watch(version, timeout=5))
    assert type(exc.value) is SinkError and time.monotonic() - t < 4


def test_close_interrupts_a_blocked_watch(api, sink):
    _, version = sink.list()
    _later(0.3, sink.close)
    t = time.monotonic()
    assert _collect(sink, version, 10) == []
    assert time.monotonic() - t < 5
    assert _collect(sink, version, 10) == []      # closed: returns at once


def test_server_stopped_is_sink_error_then_recovers(api, sink):
    api.create("a", SPEC)
    api.stop()
    for call in (sink.list, lambda: sink.get("a"),
                 lambda: list(sink.watch("1", timeout=5))):
        with pytest.raises(SinkError) as exc:
            call()
        assert type(exc.value) is SinkError
    api.start()                                   # same port, same objects
    assert [s.name for s in sink.list()[0]] == ["a"]


# -- discovery ------------------------------------------------------------------------------
@BOTH_SHAPES
def test_discovery_finds_the_write_path(api, sink):
    assert sink.status_subresource is None            # nothing asked yet
    sink.list()
    assert sink.status_subresource is api.status_subresource
    assert api.requests[0][1] == f"/apis/{GROUP}/{VERSION}"


def test_crd_not_installed_is_a_sink_error(api, sink):
    api.crd_installed = False
    with pytest.raises(SinkError, match="CRD .*caliconodestatuses.crd.projectcalico.org.* "
                                        "is not installed"):
        sink.list()
    api.crd_installed = True                              # installed later: the next list
    assert sink.list() == ([], str(api.rv))


# -- status writes --------------------------------------------------------------------------
STATUS = {"lastUpdated": "2024-01-01T00:00:00Z", "agent": {"birdV4": {"state": "Ready"}},
          "bgp": {"numberEstablishedV4": 1, "numberNotEstablishedV4": 0,
                  "numberEstablishedV6": 0, "numberNotEstablishedV6": 0}}


@BOTH_SHAPES
def test_write_status_round_trip(api, sink):
    api.create("a", SPEC, status={"old": True}, labels={"team": "net"})
    stored = sink.get("a")
    before = int(stored.version)
    new = sink.write_status(stored, STATUS)
    assert int(new.version) > before and new.raw["status"] == STATUS
    (path, name, body, code), = api.puts
    # Calico's CRD: the whole object; the variant: its status subresource
    assert path == (f"{PREFIX}/a/status" if api.status_subresource else f"{PREFIX}/a")
    assert code == 200 and body["metadata"]["resourceVersion"] == stored.version
    back = api.objects["a"]                       # read back from the server, not the client
    assert back["status"] == STATUS and back["spec"] == SPEC
    assert back["metadata"]["resourceVersion"] == new.version
    assert {k: v for k, v in back["metadata"].items() if k != "resourceVersion"} == \
        {k: v for k, v in stored.raw["metadata"].items() if k != "resourceVersion"}
    assert back["metadata"]["generation"] == 1    # spec unchanged: no new generation
    assert stored.raw["status"] == {"old": True}  # the caller's copy is not mutated
    sink.write_status(new, {"lastUpdated": "later"})   # the returned form writes again
    assert api.objects["a"]["status"] == {"lastUpdated": "later"}
    assert [q.get("fieldManager") for m, p, q, _ in api.requests if m == "PUT"] == \
        ["nodestatus"] * 2


def test_whole_object_write_sends_spec_and_metadata_as_read(api, sink):
    """Calico's CRD: the body is the object as read (every field, unknown ones too) with
    only the status replaced."""
    api.create("a", SPEC, labels={"x": "y"})
    api.objects["a"]["metadata"]["annotations"] = {"note": "kept"}
    api.objects["a"]["spec"]["futureField"] = [1, 2]
    stored = sink.get("a")
    sink.write_status(stored, STATUS)
    (_, _, body, _), = api.puts
    assert body == dict(stored.raw, status=STATUS)
    back = api.objects["a"]
    assert back["metadata"]["labels"] == {"x": "y"}
    assert back["metadata"]["annotations"] == {"note": "kept"}
    assert back["spec"] == dict(SPEC, futureField=[1, 2])


@pytest.mark.parametrize("api", [True], indirect=True, ids=["with-status-subresource"])
def test_status_subresource_ignores_spec_and_metadata(api, sink):
    api.create("a", SPEC)
    stored = sink.get("a")
    stored.raw["spec"] = dict(SPEC, node="elsewhere")
    stored.raw["metadata"]["labels"] = {"x": "y"}
    sink.write_status(stored, {"lastUpdated": "t"})
    assert api.objects["a"]["spec"] == SPEC and "labels" not in api.objects["a"]["metadata"]
    assert api.objects["a"]["status"] == {"lastUpdated": "t"}


@BOTH_SHAPES
def test_stale_version_is_conflict(api, sink):
    api.create("a", SPEC)
    stored = sink.get("a")
    api.update("a", spec=dict(SPEC, classes=["Routes"]))   # someone else wrote
    with pytest.raises(ConflictError, match="has been modified"):
        sink.write_status(stored, {"lastUpdated": "t"})
    assert "status" not in api.objects["a"]
    assert api.objects["a"]["spec"]["classes"] == ["Routes"]   # their spec stays
    sink.write_status(sink.get("a"), {"lastUpdated": "t"})  # re-read, retry: fine
    assert api.objects["a"]["spec"]["classes"] == ["Routes"]


@BOTH_SHAPES
def test_write_deleted_is_not_found_confirmed_by_get(api, sink):
    api.create("a", SPEC)
    stored = sink.get("a")
    api.delete("a")
    with pytest.raises(NotFoundError, match="a GET confirms"):
        sink.write_status(stored, {})
    assert [m for m, p, q, _ in api.requests if p.endswith("/a")][-1] == "GET"


def test_404_on_a_write_of_an_existing_resource_is_an_error_not_gone(api):
    """The CRD loses its status subresource while the agent runs (Calico's CRD applied over
    a variant): PUT .../status is 404 but the resource is there: an error naming the cause,
    never "gone"; discovery runs again and the next write takes the whole-object path."""
    api.status_subresource = True
    sink = KubeSink(host=api.url)
    try:
        api.create("a", SPEC)
        sink.list()
        assert sink.status_subresource is True
        api.status_subresource = False
        stored = sink.get("a")
        with pytest.raises(SinkError, match="resource exists: the CRD has no status "
                                            "subresource") as exc:
            sink.write_status(stored, STATUS)
        assert not isinstance(exc.value, NotFoundError)
        new = sink.write_status(stored, STATUS)
        assert sink.status_subresource is False
        assert [p for p, *_ in api.puts] == [f"{PREFIX}/a/status", f"{PREFIX}/a"]
        assert api.objects["a"]["status"] == STATUS and new.raw["status"] == STATUS
    finally:
        sink.close()


@BOTH_SHAPES
def test_body_over_request_limit_is_too_large(api, sink):
    api.max_body = 10_000
    api.create("a", SPEC)
    with pytest.raises(TooLargeError, match="413"):
        sink.write_status(sink.get("a"), {"routes": {"routesV4": [{"x": "y" * 20_000}]}})
    assert "status" not in api.objects["a"]


@BOTH_SHAPES
def test_object_over_etcd_limit_is_too_large(api, sink):
    api.max_stored = 10_000
    api.create("a", SPEC)
    with pytest.raises(TooLargeError, match="request is too large"):
        sink.write_status(sink.get("a"), {"routes": {"routesV4": [{"x": "y" * 20_000}]}})
    assert KubeSink(host=api.url, max_bytes=1234).max_bytes == 1234
    assert KubeSink.max_bytes <= 1_572_864       # below etcd's default request limit


# -- label selector -------------------------------------------------------------------------
def test_selector_lists_and_watches_server_side(api):
    sink = KubeSink(host=api.url, selector=Selector.parse("reporter=nodestatus"))
    try:
        api.create("mine", SPEC, labels={"reporter": "nodestatus"})
        api.create("calicos", SPEC)
        items, version = sink.list()
        assert [s.name for s in items] == ["mine"]
        assert {q.get("labelSelector") for m, p, q, _ in api.requests if p == PREFIX} == \
            {"reporter=nodestatus"}

        def changes():
            api.update("calicos", labels={"reporter": "nodestatus"})   # starts matching
            api.update("mine", labels={"reporter": "calico"})          # stops matching
            api.update("mine", status={"x": 1})                        # not ours any more

        _later(0.2, changes)
        events = _collect(sink, version, 1.5)
        assert [(t, n) for t, n, _ in events] == [("ADDED", "calicos"), ("DELETED", "mine")]
        watch, = [q for m, p, q, _ in api.requests if q.get("watch")]
        assert watch["labelSelector"] == "reporter=nodestatus"
    finally:
        sink.close()
