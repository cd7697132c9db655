"""The CalicoNodeStatus resource: Calico's field names and omission rules, and one clear
message per bad spec field."""
import json

import msgspec
import pytest

from nodestatus.resource import (
    CalicoNodeRoute,
    CalicoNodeRouteLearnedFrom,
    CalicoNodeStatus,
    CalicoNodeStatusSpec,
    CalicoNodeStatusStatus,
    ObjectMeta,
    SpecError,
    decode_resource,
    encode_json,
    encode_yaml,
)

GOOD = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "CalicoNodeStatus",
    "metadata": {"name": "my-caliconodestatus-1", "resourceVersion": "42"},
    "spec": {"classes": ["Agent", "BGP", "Routes"], "node": "my-kadm-node-0",
             "updatePeriodSeconds": 10},
}


def _decode(obj) -> CalicoNodeStatus:
    return decode_resource(json.dumps(obj).encode(), source="res.json")


def test_round_trip_json_and_yaml():
    res = _decode(GOOD)
    assert res.spec.node == "my-kadm-node-0" and res.spec.update_period_seconds == 10
    assert res.metadata.resource_version == "42"
    assert json.loads(encode_json(res)) == GOOD
    yaml_res = decode_resource(encode_yaml(res).encode(), source="res.yaml")
    assert yaml_res == res


def test_crd_api_version_accepted():
    assert _decode({**GOOD, "apiVersion": "crd.projectcalico.org/v1"}).api_version == \
        "crd.projectcalico.org/v1"


def test_status_field_names_and_omission():
    st = CalicoNodeStatusStatus(last_updated="2021-10-18T13:22:03Z")
    st.agent.bird_v4.state = "Ready"
    st.agent.bird_v4.router_id = "10.128.0.240"
    st.routes.routes_v4.append(CalicoNodeRoute(
        type="FIB", destination="192.168.82.0/26", gateway="10.128.0.200", interface="eth0",
        learned_from=CalicoNodeRouteLearnedFrom(source_type="NodeMesh", peer_ip="10.128.0.200")))
    out = msgspec.to_builtins(st)
    assert out == {
        "lastUpdated": "2021-10-18T13:22:03Z",
        "agent": {"birdV4": {"state": "Ready", "routerID": "10.128.0.240"}, "birdV6": {}},
        "bgp": {"numberEstablishedV4": 0, "numberNotEstablishedV4": 0,
                "numberEstablishedV6": 0, "numberNotEstablishedV6": 0},
        "routes": {"routesV4": [{"type": "FIB", "destination": "192.168.82.0/26",
                                 "gateway": "10.128.0.200", "interface": "eth0",
                                 "learnedFrom": {"sourceType": "NodeMesh",
                                                 "peerIP": "10.128.0.200"}}]},
    }


def test_period_zero_is_kept():
    res = _decode({**GOOD, "spec": {**GOOD["spec"], "updatePeriodSeconds": 0}})
    assert json.loads(encode_json(res))["spec"]["updatePeriodSeconds"] == 0


@pytest.mark.parametrize("patch,field,words", [
    ({"metadata": {}}, "metadata.name", "required"),
    ({"metadata": {"name": "bad name!"}}, "metadata.name", "not valid"),
    ({"spec": {"classes": ["BGP"], "updatePeriodSeconds": 1}}, "spec.node", "required"),
    ({"spec": {"node": "Node_1", "classes": ["BGP"], "updatePeriodSeconds": 1}}, "spec.node",
     "not a valid Kubernetes node name"),
    ({"spec": {"node": "n", "updatePeriodSeconds": 1}}, "spec.classes", "required"),
    ({"spec": {"node": "n", "classes": ["BGP", "Foo"], "updatePeriodSeconds": 1}},
     "spec.classes", "unknown class 'Foo'"),
    ({"spec": {"node": "n", "classes": ["BGP", "BGP"], "updatePeriodSeconds": 1}},
     "spec.classes", "repeated"),
    ({"spec": {"node": "n", "classes": ["BGP"]}}, "spec.updatePeriodSeconds", "required"),
    ({"spec": {"node": "n", "classes": ["BGP"], "updatePeriodSeconds": 86401}},
     "spec.updatePeriodSeconds", "0..86400"),
    ({"spec": {"node": "n", "classes": ["BGP"], "updatePeriodSeconds": -1}},
     "spec.updatePeriodSeconds", "0..86400"),
    ({"spec": {"node": "n", "classes": ["BGP"], "updatePeriodSeconds": 1.5}},
     "spec.updatePeriodSeconds", "integer"),
    ({"spec": {"node": "n", "classes": ["BGP"], "updatePeriodSeconds": "10"}},
     "spec.updatePeriodSeconds", "integer"),
    ({"spec": {"node": "n", "classes": ["BGP"], "updatePeriodSeconds": True}},
     "spec.updatePeriodSeconds", "integer"),
    ({"apiVersion": "v1"}, "apiVersion", "must be one of"),
    ({"kind": "Node"}, "kind", "CalicoNodeStatus"),
])
def test_bad_fields_are_named(patch, field, words):
    with pytest.raises(SpecError) as ei:
        _decode({**GOOD, **patch})
    assert ei.value.field == field
    assert words in str(ei.value) and str(ei.value).endswith("- at res.json")


def test_not_yaml_at_all():
    with pytest.raises(SpecError, match="resource"):
        decode_resource(b"{not json", source="x")
    with pytest.raises(SpecError, match="resource"):
        decode_resource(b"- a\n- b\n", source="x")
