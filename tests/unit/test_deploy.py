"""The ``deploy/`` manifests, parsed: the CRD in Calico's shape (no status subresource,
fields as the resource model), RBAC for either write path and for ``nodestatus cluster``
(checked against the requests the command really sends), and a DaemonSet whose image,
arguments, probes and metrics port match what the agent and ``make image`` really provide."""
from __future__ import annotations

import pathlib
import shlex

import msgspec
import pytest
import yaml

import nodestatus
from fakes.kube_api import FakeKubeAPI
from nodestatus import cli
from nodestatus.listener import parse_address
from nodestatus.resource import (BGPDaemonStatus, CalicoNodeAgentStatus, CalicoNodeBGPRouteStatus,
                                 CalicoNodeBGPStatus, CalicoNodePeer, CalicoNodeRoute,
                                 CalicoNodeRouteLearnedFrom, CalicoNodeStatusSpec,
                                 CalicoNodeStatusStatus)
from nodestatus.sinks.selector import Selector

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy"


def _docs(name):
    return list(yaml.safe_load_all((DEPLOY / name).read_text()))


def _names(struct) -> set:
    """The JSON field names of one of the resource model's structs."""
    return {f.encode_name for f in msgspec.structs.fields(struct)}


def _walk(node, path=""):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


# -- CRD --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def crd():
    doc, = _docs("crd.yaml")
    return doc


def test_crd_is_calicos_shape(crd):
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "caliconodestatuses.crd.projectcalico.org"
    spec = crd["spec"]
    assert spec["group"] == "crd.projectcalico.org" and spec["scope"] == "Cluster"
    assert spec["names"] == {"kind": "CalicoNodeStatus", "listKind": "CalicoNodeStatusList",
                             "plural": "caliconodestatuses", "singular": "caliconodestatus"}
    assert spec["preserveUnknownFields"] is False
    v1, = spec["versions"]
    assert (v1["name"], v1["served"], v1["storage"]) == ("v1", True, True)
    # Calico's CRD has no status subresource (and no printer columns): nowhere in the doc
    assert "subresources" not in v1
    assert not [p for p, _ in _walk(crd) if p.endswith(".subresources")]
    assert "additionalPrinterColumns" not in v1


def test_crd_schema_fields_are_the_resource_models(crd):
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert root["type"] == "object"
    props = root["properties"]
    assert set(props) == {"apiVersion", "kind", "metadata", "spec", "status"}
    spec = props["spec"]["properties"]
    assert set(spec) == _names(CalicoNodeStatusSpec)
    assert spec["classes"] == {"description": spec["classes"]["description"],
                               "type": "array", "items": {"type": "string"}}
    assert (spec["updatePeriodSeconds"]["type"], spec["updatePeriodSeconds"]["format"]) == \
        ("integer", "int32")
    # like Calico's: the spec is not validated by the apiserver (the agent validates)
    assert "required" not in props["spec"]
    assert not [p for p, n in _walk(props["spec"]) if isinstance(n, dict)
                and {"enum", "minimum", "maximum", "minItems"} & set(n)]
    status = props["status"]["properties"]
    assert set(status) == _names(CalicoNodeStatusStatus)
    assert status["lastUpdated"]["format"] == "date-time" and status["lastUpdated"]["nullable"]
    agent = status["agent"]["properties"]
    assert set(agent) == _names(CalicoNodeAgentStatus)
    for daemon in agent.values():
        assert set(daemon["properties"]) == _names(BGPDaemonStatus)
    bgp = status["bgp"]
    assert set(bgp["properties"]) == _names(CalicoNodeBGPStatus)
    assert set(bgp["required"]) == {n for n in _names(CalicoNodeBGPStatus) if "number" in n}
    for peers in ("peersV4", "peersV6"):
        assert set(bgp["properties"][peers]["items"]["properties"]) == _names(CalicoNodePeer)
    routes = status["routes"]["properties"]
    assert set(routes) == _names(CalicoNodeBGPRouteStatus)
    for fam in routes.values():
        item = fam["items"]["properties"]
        assert set(item) == _names(CalicoNodeRoute)
        assert set(item["learnedFrom"]["properties"]) == _names(CalicoNodeRouteLearnedFrom)
    assert "x-kubernetes-preserve-unknown-fields" not in props["status"]


def test_crd_says_never_on_a_calico_cluster():
    text = (DEPLOY / "crd.yaml").read_text()
    assert "ONLY on a cluster WITHOUT Calico" in text
    assert "never replace" in text


def test_fake_api_server_defaults_to_this_crd(crd):
    """The tests' stand-in serves the shape shipped here by default."""
    has_subresource = "subresources" in crd["spec"]["versions"][0]
    assert FakeKubeAPI().status_subresource is has_subresource is False


# -- RBAC -------------------------------------------------------------------------------------
def test_rbac_covers_both_write_paths():
    sa, role, binding = _docs("rbac.yaml")
    assert (sa["kind"], role["kind"], binding["kind"]) == \
        ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    rules = {(res, v) for r in role["rules"] for res in r["resources"] for v in r["verbs"]}
    assert rules == {("caliconodestatuses", "get"), ("caliconodestatuses", "list"),
                     ("caliconodestatuses", "watch"),
                     ("caliconodestatuses", "update"),          # Calico's CRD: whole object
                     ("caliconodestatuses/status", "update")}   # a CRD with the subresource
    assert all(r["apiGroups"] == ["crd.projectcalico.org"] for r in role["rules"])
    assert not {v for r in role["rules"] for v in r["verbs"]} & {"create", "delete", "patch",
                                                                "*"}
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    subject, = binding["subjects"]
    assert (subject["name"], subject["namespace"]) == \
        (sa["metadata"]["name"], sa["metadata"]["namespace"])


def _verbs_sent(api) -> set:
    """``(apiGroup, resource, verb)`` of every request the fake API server received, as the
    apiserver's authorizer names them (discovery is the built-in system:discovery role's)."""
    from fakes.kube_api import DISCOVERY, NODES, PREFIX

    sent = set()
    for method, path, query, _ in api.requests:
        path = path.rstrip("/")
        if path == DISCOVERY:
            continue
        if path.startswith(NODES):
            group, resource, rest = "", "nodes", path[len(NODES):].strip("/")
        else:
            assert path.startswith(PREFIX), path
            group, resource, rest = "crd.projectcalico.org", "caliconodestatuses", \
                path[len(PREFIX):].strip("/")
        name, _, sub = rest.partition("/")
        if sub:
            resource += "/" + sub
        verb = {"POST": "create", "PUT": "update", "DELETE": "delete"}.get(method) or (
            "get" if name else "watch" if query.get("watch") in ("true", "1") else "list")
        sent.add((group, resource, verb))
    return sent


def _grants(role) -> set:
    return {(g, res, v) for r in role["rules"] for g in r["apiGroups"]
            for res in r["resources"] for v in r["verbs"]}


def test_cluster_rbac_is_exactly_what_the_command_sends(tmp_path, capsys):
    """``deploy/rbac-cluster.yaml``: each role grants every verb its command sends to a
    Calico-shaped API server, and nothing it does not send."""
    pytest.importorskip("kubernetes", reason="the [kube] extra is not installed")
    view, req = _docs("rbac-cluster.yaml")
    assert (view["kind"], req["kind"]) == ("ClusterRole", "ClusterRole")
    api = FakeKubeAPI().start()
    try:
        for n in (1, 2):
            api.add_node(f"node{n}", ipv4=f"10.77.0.{n}/24", internal_ips=(f"10.77.0.{n}",))
        base = ["--datastore", "kubernetes", "--kubeconfig",
                api.kubeconfig(tmp_path / "kubeconfig")]
        assert cli.main(["cluster", "request", "--all-nodes", *base]) == 0
        del api.nodes["node2"]                       # its resource is deleted on the next run
        api.before_put.append(lambda name: api.update(      # the agent writes meanwhile:
            name, status={"lastUpdated": "2026-12-02T05:00:00Z"}))   # 409, GET, PUT again
        assert cli.main(["cluster", "request", "--all-nodes", "--period", "5", *base]) == 0
        assert cli.main(["cluster", "request", "--delete", *base]) == 0
        requested = _verbs_sent(api)
        assert api.objects == {} and requested >= {
            ("crd.projectcalico.org", "caliconodestatuses", v)
            for v in ("create", "update", "delete")}
        api.requests.clear()
        api.create("n1", {"node": "node1", "classes": ["BGP"], "updatePeriodSeconds": 5})
        assert cli.main(["cluster", "-o", "json", *base]) == 1      # no status yet
        viewed = _verbs_sent(api)
    finally:
        api.stop()
    capsys.readouterr()
    assert _grants(req) == requested
    assert _grants(view) == viewed
    assert not {v for _, _, v in viewed} & {"create", "update", "delete", "patch"}


# -- DaemonSet --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def daemonset():
    ds, = _docs("daemonset.yaml")
    return ds


def _container(ds):
    c, = ds["spec"]["template"]["spec"]["containers"]
    return c


def test_daemonset_runs_the_agent_with_valid_arguments(daemonset):
    sa = _docs("rbac.yaml")[0]
    ds = daemonset
    assert ds["kind"] == "DaemonSet" and ds["metadata"]["namespace"] == sa["metadata"]["namespace"]
    pod = ds["spec"]["template"]["spec"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= \
        ds["spec"]["template"]["metadata"]["labels"].items()
    assert pod["hostNetwork"] is True and pod["serviceAccountName"] == sa["metadata"]["name"]
    c = _container(ds)
    assert c["command"] == ["nodestatus"]
    args = cli.build_parser().parse_args(c["args"])          # the real parser accepts them
    assert args.cmd == "agent" and args.datastore == "kubernetes" and not args.once
    assert Selector.parse(args.selector)                     # a --selector example, valid
    env = {e["name"]: e for e in c["env"]}
    assert env["NODENAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    mount, = [m for m in c["volumeMounts"] if m["mountPath"] == "/var/run/calico"]
    assert not mount.get("readOnly")              # connect() needs write on the socket
    vol, = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert vol["hostPath"]["path"] == "/var/run/calico"


def test_daemonset_image_is_what_make_image_tags(daemonset):
    image = _container(daemonset)["image"]
    assert image == f"localhost/nodestatus:{nodestatus.__version__}"
    makefile = pathlib.Path(__file__).resolve().parents[2] / "Makefile"
    text = makefile.read_text() if makefile.exists() else ""
    if "image:" in text:                          # the packaging target, once it exists
        assert "localhost/nodestatus" in text
    assert "push" in (DEPLOY / "daemonset.yaml").read_text()   # says to push and change it


def test_daemonset_probes_hit_the_health_listener(daemonset):
    c = _container(daemonset)
    args = cli.build_parser().parse_args(c["args"])
    host, port = parse_address(args.health_addr)
    live, ready = c["livenessProbe"]["httpGet"], c["readinessProbe"]["httpGet"]
    assert (live["path"], ready["path"]) == ("/healthz", "/readyz")
    for probe in (live, ready):
        assert probe["port"] == port
        assert probe.get("host", host) == host     # hostNetwork: the node's loopback
    # Calico's own ports on the host network are left alone
    assert port not in (9099, 9091, 9093, 9098, 179)


def test_daemonset_serves_metrics_on_the_node_address(daemonset):
    """``--metrics-addr=$(NODE_IP):PORT``, NODE_IP from the downward API: the address the
    kubelet substitutes parses as the agent's, and the port is the one declared and
    annotated for Prometheus."""
    ds = daemonset
    c = _container(ds)
    args = cli.build_parser().parse_args(c["args"])
    env = {e["name"]: e for e in c["env"]}
    assert "$(NODE_IP)" in args.metrics_addr
    assert env["NODE_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    host, port = parse_address(args.metrics_addr.replace("$(NODE_IP)", "192.0.2.7"))
    assert host == "192.0.2.7"
    declared, = [p for p in c["ports"] if p["name"] == "metrics"]
    assert declared["containerPort"] == port
    notes = ds["spec"]["template"]["metadata"]["annotations"]
    assert (notes["prometheus.io/scrape"], notes["prometheus.io/port"],
            notes["prometheus.io/path"]) == ("true", str(port), "/metrics")
    assert port not in (9099, 9091, 9093, 9098, 179)
    assert port != parse_address(args.health_addr)[1]


def test_daemonset_security(daemonset):
    pod = daemonset["spec"]["template"]["spec"]
    c = _container(daemonset)
    seccomp = (c.get("securityContext", {}).get("seccompProfile")
               or pod.get("securityContext", {}).get("seccompProfile"))
    assert seccomp == {"type": "RuntimeDefault"}
    assert pod["priorityClassName"] == "system-node-critical"
    sc = c["securityContext"]
    assert sc["runAsUser"] == 0                   # BIRD's sockets are root's ...
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True   # ... and that is all root gets
    text = (DEPLOY / "daemonset.yaml").read_text()
    assert "root only because BIRD's control sockets" in text


def test_deploy_shell_example_in_comments_parses():
    """The push example in the DaemonSet comment names the image it ships with."""
    text = (DEPLOY / "daemonset.yaml").read_text()
    line, = [x for x in text.splitlines() if "podman push" in x]
    words = shlex.split(line.lstrip("# "))
    assert words[:3] == ["podman", "push", f"localhost/nodestatus:{nodestatus.__version__}"]
