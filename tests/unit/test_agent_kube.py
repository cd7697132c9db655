"""The agent end to end on the Kubernetes backend, against the fake API server (no
kube-apiserver can be installed here): create -> status written through the status
subresource, spec change -> reported at once, another node's resource untouched."""
import threading
import time
from pathlib import Path

import pytest

from fakes.kube_api import FakeKubeAPI
from nodestatus.agent import Agent
from nodestatus.sinks.kube import KubeSink
from nodestatus.sources import collect_dumps

LAB = Path(__file__).resolve().parent.parent / "data" / "captures" / "calico-lab-node1"
DATA = collect_dumps(*[[str(LAB / f"v{f}" / n) for n in ("show_status.raw",
                                                      "show_protocols_all.raw", "show_route.raw")]
                       for f in (4, 6)])


def _wait(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def running():
    api = FakeKubeAPI().start()
    calls = []

    def collect(classes):
        calls.append(tuple(classes))
        return DATA

    sink = KubeSink(host=f"http://127.0.0.1:{api.port}", request_timeout=5)
    agent = Agent(sink, "node1", collect, watch_timeout=0.2)
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    try:
        yield api, agent, calls
    finally:
        agent.stop()
        t.join(timeout=10)
        sink.close()
        api.stop()
    assert not t.is_alive()


def test_agent_on_kubernetes(running):
    api, agent, calls = running
    api.create("mine", {"node": "node1", "classes": ["BGP"], "updatePeriodSeconds": 0})
    api.create("theirs", {"node": "node2", "classes": ["BGP"], "updatePeriodSeconds": 0})
    assert _wait(lambda: "status" in api.objects["mine"])
    st = api.objects["mine"]["status"]
    assert st["bgp"]["numberEstablishedV4"] == 2 and st["lastUpdated"].endswith("Z")
    assert [p["peerIP"] for p in st["bgp"]["peersV4"]][:2] == ["10.77.0.2", "10.77.0.3"]
    assert "status" not in api.objects["theirs"]
    # a spec change reports at once even with period 0
    api.update("mine", spec={"node": "node1", "classes": ["Agent"], "updatePeriodSeconds": 0})
    assert _wait(lambda: api.objects["mine"].get("status", {}).get("agent", {})
                 .get("birdV4", {}).get("state") == "Ready")
    assert api.objects["mine"]["spec"]["classes"] == ["Agent"]   # spec never rewritten
    api.delete("mine")
    assert _wait(lambda: "mine" not in agent.reporters)
