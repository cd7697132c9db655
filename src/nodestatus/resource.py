"""The CalicoNodeStatus resource: msgspec structs whose JSON/YAML is Calico's, and spec
validation with one clear message per bad field.

Omission rules follow Calico's Go types (``omitempty`` on strings and lists, the four BGP
counters always present, nested status structs always present).
"""
from __future__ import annotations

import datetime
import re
from typing import Any, List, Optional

import msgspec

from .errors import SpecError  # re-exported: resource validation raises it

#: How Kubernetes writes times (``lastUpdated``, ``creationTimestamp``): RFC3339, UTC,
#: whole seconds.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def timestamp(when: Optional[datetime.datetime] = None) -> str:
    """``when`` (an aware datetime; default now) in :data:`TIMESTAMP_FORMAT`."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)

__all__ = (
    "API_VERSIONS",
    "CLASSES",
    "SpecError",
    "ObjectMeta",
    "CalicoNodeStatusSpec",
    "BGPDaemonStatus",
    "CalicoNodeAgentStatus",
    "CalicoNodePeer",
    "CalicoNodeBGPStatus",
    "CalicoNodeRouteLearnedFrom",
    "CalicoNodeRoute",
    "CalicoNodeBGPRouteStatus",
    "CalicoNodeStatusStatus",
    "CalicoNodeStatus",
    "decode_resource",
    "encode_json",
    "encode_yaml",
    "validate",
)

API_VERSIONS = ("projectcalico.org/v3", "crd.projectcalico.org/v1")
KIND = "CalicoNodeStatus"
CLASSES = ("Agent", "BGP", "Routes")
MAX_PERIOD = 86400

_Omit = dict(kw_only=True, omit_defaults=True)


class ObjectMeta(msgspec.Struct, **_Omit, rename="camel"):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: Optional[int] = None
    creation_timestamp: Optional[str] = None
    labels: Optional[dict] = None
    annotations: Optional[dict] = None


class CalicoNodeStatusSpec(msgspec.Struct, **_Omit, rename="camel"):
    node: str = ""
    classes: List[str] = []
    #: Kept as decoded (any JSON value) so validation can say what was wrong with it.
    update_period_seconds: Any = None


class BGPDaemonStatus(msgspec.Struct, **_Omit):
    state: str = msgspec.field(default="")
    version: str = ""
    router_id: str = msgspec.field(default="", name="routerID")
    last_boot_time: str = msgspec.field(default="", name="lastBootTime")
    last_reconfiguration_time: str = msgspec.field(default="", name="lastReconfigurationTime")


class CalicoNodeAgentStatus(msgspec.Struct, kw_only=True):
    bird_v4: BGPDaemonStatus = msgspec.field(default_factory=BGPDaemonStatus, name="birdV4")
    bird_v6: BGPDaemonStatus = msgspec.field(default_factory=BGPDaemonStatus, name="birdV6")


class CalicoNodePeer(msgspec.Struct, **_Omit):
    peer_ip: str = msgspec.field(default="", name="peerIP")
    type: str = ""
    state: str = ""
    since: str = ""


class CalicoNodeBGPStatus(msgspec.Struct, kw_only=True, omit_defaults=True):
    number_established_v4: int = msgspec.field(name="numberEstablishedV4")
    number_not_established_v4: int = msgspec.field(name="numberNotEstablishedV4")
    number_established_v6: int = msgspec.field(name="numberEstablishedV6")
    number_not_established_v6: int = msgspec.field(name="numberNotEstablishedV6")
    peers_v4: List[CalicoNodePeer] = msgspec.field(default_factory=list, name="peersV4")
    peers_v6: List[CalicoNodePeer] = msgspec.field(default_factory=list, name="peersV6")


class CalicoNodeRouteLearnedFrom(msgspec.Struct, **_Omit, frozen=True):
    source_type: str = msgspec.field(default="", name="sourceType")
    peer_ip: str = msgspec.field(default="", name="peerIP")


class CalicoNodeRoute(msgspec.Struct, omit_defaults=True, frozen=True, gc=False):
    # positional (no kw_only): built once per route of a 100k-route table
    type: str = ""
    destination: str = ""
    gateway: str = ""
    interface: str = ""
    learned_from: CalicoNodeRouteLearnedFrom = msgspec.field(
        default_factory=CalicoNodeRouteLearnedFrom, name="learnedFrom")


class CalicoNodeBGPRouteStatus(msgspec.Struct, **_Omit):
    routes_v4: List[CalicoNodeRoute] = msgspec.field(default_factory=list, name="routesV4")
    routes_v6: List[CalicoNodeRoute] = msgspec.field(default_factory=list, name="routesV6")


def _empty_bgp() -> CalicoNodeBGPStatus:
    return CalicoNodeBGPStatus(number_established_v4=0, number_not_established_v4=0,
                               number_established_v6=0, number_not_established_v6=0)


class CalicoNodeStatusStatus(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    last_updated: Optional[str] = None
    agent: CalicoNodeAgentStatus = msgspec.field(default_factory=CalicoNodeAgentStatus)
    bgp: CalicoNodeBGPStatus = msgspec.field(default_factory=_empty_bgp)
    routes: CalicoNodeBGPRouteStatus = msgspec.field(default_factory=CalicoNodeBGPRouteStatus)


class CalicoNodeStatus(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    # no defaults: always written, and required when decoding
    api_version: str
    kind: str
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: CalicoNodeStatusSpec = msgspec.field(default_factory=CalicoNodeStatusSpec)
    status: Optional[CalicoNodeStatusStatus] = None


# Calico validates `name` on the resource and node names as Kubernetes names.
_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,251}[a-zA-Z0-9])?$")
_NODE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def validate(res: CalicoNodeStatus, *, source: str = "") -> CalicoNodeStatus:
    """Check the resource as Calico's validator would; raises SpecError naming the field."""
    if res.api_version not in API_VERSIONS:
        raise SpecError("apiVersion", f"must be one of {', '.join(API_VERSIONS)}, got "
                        f"{res.api_version!r}", source=source)
    if res.kind != KIND:
        raise SpecError("kind", f"must be {KIND}, got {res.kind!r}", source=source)
    name = res.metadata.name
    if not name:
        raise SpecError("metadata.name", "is required", source=source)
    if not _NAME.match(name):
        raise SpecError("metadata.name", f"{name!r} is not valid: use letters, digits and "
                        "'.', '_', '-' (starting and ending with a letter or digit)",
                        source=source)
    spec = res.spec
    if not spec.node:
        raise SpecError("spec.node", "is required", source=source)
    if len(spec.node) > 253 or not _NODE.match(spec.node):
        raise SpecError("spec.node", f"{spec.node!r} is not a valid Kubernetes node name "
                        "(lower-case letters, digits, '-' and '.')", source=source)
    if not spec.classes:
        raise SpecError("spec.classes", f"is required: a list of {', '.join(CLASSES)}",
                        source=source)
    seen = set()
    for c in spec.classes:
        if c not in CLASSES:
            raise SpecError("spec.classes", f"unknown class {c!r} (known: "
                            f"{', '.join(CLASSES)})", source=source)
        if c in seen:
            raise SpecError("spec.classes", f"class {c!r} is repeated", source=source)
        seen.add(c)
    period = spec.update_period_seconds
    if period is None:
        raise SpecError("spec.updatePeriodSeconds", "is required (0 = no refresh)",
                        source=source)
    if isinstance(period, bool) or not isinstance(period, int):
        raise SpecError("spec.updatePeriodSeconds", f"must be an integer, got {period!r}",
                        source=source)
    if not 0 <= period <= MAX_PERIOD:
        raise SpecError("spec.updatePeriodSeconds", f"must be within 0..{MAX_PERIOD}, got "
                        f"{period}", source=source)
    return res


def decode_resource(data: bytes, *, source: str = "") -> CalicoNodeStatus:
    """A resource from JSON or YAML text, validated."""
    text = data.lstrip()
    try:
        if text[:1] == b"{":
            res = msgspec.json.decode(data, type=CalicoNodeStatus)
        else:
            import yaml

            obj = yaml.safe_load(data)
            res = msgspec.convert(obj, type=CalicoNodeStatus)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise SpecError("resource", str(exc), source=source) from None
    except Exception as exc:  # yaml.YAMLError and friends
        raise SpecError("resource", f"not valid YAML/JSON: {exc}", source=source) from None
    return validate(res, source=source)


def encode_json(res: CalicoNodeStatus, indent: int = 2) -> bytes:
    return msgspec.json.format(msgspec.json.encode(res), indent=indent)


def encode_yaml(res: CalicoNodeStatus) -> str:
    import yaml

    return yaml.safe_dump(msgspec.to_builtins(res), sort_keys=False, default_flow_style=False)
