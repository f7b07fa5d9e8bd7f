"""Rules of the typed (multi-document) kinds Domum writes, from siderolabs/talos v1.13.9.

Kinds without a rule here (ResolverConfig has no Validate in v1.13) are still decoded and
conflict-checked. Messages are Talos's own text, so searching for one finds the Go source.
"""

from __future__ import annotations

import re
from typing import Any

from . import goparse as go
from .registry import Doc, rule

NET = "machinery/config/types/network"
_LINK_KINDS = (  # network/link.go conflictingLinkKinds
    "BondConfig",
    "BridgeConfig",
    "DummyLinkConfig",
    "LinkConfig",
    "VLANConfig",
    "VRFConfig",
    "WireguardConfig",
)
_CONFLICTS = {k: [o for o in _LINK_KINDS if o != k] for k in _LINK_KINDS}
_CONFLICTS |= {"Layer2VIPConfig": ["HCloudVIPConfig"], "HCloudVIPConfig": ["Layer2VIPConfig"]}
_CONFLICTS |= {"UserVolumeConfig": ["ExistingVolumeConfig"]}
_CONFLICTS |= {"ExistingVolumeConfig": ["UserVolumeConfig"]}
_AUTO_HOSTNAME = ("off", "talos-addr", "stable")  # nethelpers AutoHostnameKind (enumer -text)
# The CEL LinkLocator environment (machinery/cel/celenv/celenv.go LinkLocator) declares one
# variable, `link`, and the functions glob() and mac(). A full CEL parser is out of scope: this
# checks that only `link` is referenced, quotes and parentheses balance and `=` is never alone.
_REFERENCE = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\.")
_LONE_EQUALS = re.compile(r"(?<![=!<>])=(?!=)")


def doc_id(doc: Doc) -> str:
    """container.go docID: Kind, plus /name for named documents."""
    return f"{doc.get('kind')}/{doc['name']}" if "name" in doc else str(doc.get("kind"))


def _name(doc: Doc) -> str:
    return str(doc.get("name") or "")


# --- decode: yaml into the Go types (configloader/internal/decoder/decoder.go decode) ----------


@rule(
    f"{NET}/link.go", "CommonLinkConfig (netip.Prefix, netip.Addr fields)", "decode", "LinkConfig"
)
def decode_link(doc: Doc) -> list[str]:
    out = []
    for a in doc.get("addresses") or []:
        if isinstance(a, dict) and a.get("address"):
            out += [e for e in [go.prefix_error(a["address"])] if e]
    for r in doc.get("routes") or []:
        r = r if isinstance(r, dict) else {}
        if r.get("destination"):
            out += [e for e in [go.prefix_error(r["destination"])] if e]
        out += [e for k in ("gateway", "source") if r.get(k) for e in [go.addr_error(r[k])] if e]
    return out


@rule(f"{NET}/resolver.go", "NameserverConfig.Address (netip.Addr)", "decode", "ResolverConfig")
def decode_resolver(doc: Doc) -> list[str]:
    out = []
    for ns in doc.get("nameservers") or []:
        value = (ns or {}).get("address") if isinstance(ns, dict) else None
        if value:
            out += [e for e in [go.addr_error(value)] if e]
    return out


@rule(f"{NET}/time_sync.go", "TimeSyncConfigV1Alpha1.TimeBootTimeout", "decode", "TimeSyncConfig")
def decode_time_sync(doc: Doc) -> list[str]:
    return _duration(doc, "bootTimeout")


@rule(
    "machinery/config/types/runtime/watchdog_timer.go",
    "WatchdogTimerV1Alpha1.WatchdogTimeout",
    "decode",
    "WatchdogTimerConfig",
)
def decode_watchdog(doc: Doc) -> list[str]:
    return _duration(doc, "timeout")


@rule(f"{NET}/hostname.go", "HostnameConfigV1Alpha1.ConfigAuto", "decode", "HostnameConfig")
def decode_hostname(doc: Doc) -> list[str]:
    auto = doc.get("auto")
    if auto is None or str(auto).lower() in _AUTO_HOSTNAME:
        return []
    return [f"{auto} does not belong to AutoHostnameKind values"]


def _duration(doc: Doc, key: str) -> list[str]:
    value = doc.get(key)
    if value is None or go.parse_duration(value) is not None:
        return []
    if not isinstance(value, str):
        return [f"cannot unmarshal {value!r} into time.Duration"]
    return [f"time: invalid duration {go._goq(value)}"]


# --- container: one document per kind and name -------------------------------------------------


@rule("machinery/config/container/container.go", "New", "container")
def container_documents(docs: list[Doc]) -> list[str]:
    """Same Kind/name twice, or a name two conflicting kinds share (ConflictsWithKinds).
    Talos stops at the first; this reports each."""
    out: list[str] = []
    seen: set[str] = set()
    conflicting: dict[str, str] = {}
    for d in docs:
        did = f"{d.get('kind')}/{_name(d)}"
        if did in seen:
            out.append(f"duplicate document: {did}")
        seen.add(did)
        if did in conflicting:
            out.append(f"conflicting documents: {conflicting[did]} and {did}")
            continue  # Talos returns here
        for kind in _CONFLICTS.get(str(d.get("kind")), []):
            other = f"{kind}/{_name(d)}"
            if other in seen:
                out.append(f"conflicting documents: {other} and {did}")
                break
            conflicting[other] = did
    return out


# --- document: each kind's Validate --------------------------------------------------------------


@rule(f"{NET}/hostname.go", "HostnameConfigV1Alpha1.Validate", "document", "HostnameConfig")
def hostname(doc: Doc) -> list[str]:
    auto, name = doc.get("auto"), str(doc.get("hostname") or "")
    kind = str(auto).lower() if auto is not None else "off"  # SafeDeref(nil) is Off (0)
    out = []
    if auto is None and not name:
        out.append("either 'auto' or 'hostname' must be set")
    if kind != "off" and name:
        out.append("'auto' and 'hostname' cannot be set at the same time")
    if kind not in ("off", "stable"):
        out.append(f"invalid value for 'auto': {kind}")
    if name:
        if len(name) > 253:
            out.append(f"fqdn is too long: {len(name)}")
        label = name.split(".", 1)[0]
        if not 0 < len(label) <= 63:
            out.append(f"invalid hostname {go._goq(label)}")
    return out


@rule(f"{NET}/layer2_vip.go", "Layer2VIPConfigV1Alpha1.Validate", "document", "Layer2VIPConfig")
def layer2_vip(doc: Doc) -> list[str]:
    out = []
    if not _name(doc):
        out.append("name must be specified")
    elif bad := go.addr_error(_name(doc)):
        out.append(f"name must be a valid IP address: {bad}")
    if not doc.get("link"):
        out.append("link must be specified")
    return out


@rule(f"{NET}/link_alias.go", "LinkAliasConfigV1Alpha1.Validate", "document", "LinkAliasConfig")
def link_alias(doc: Doc) -> list[str]:
    out = []
    name = _name(doc)
    if not name:
        out.append("name must be specified")
    elif "%" in name:
        prefix, _, suffix = name.partition("%")
        if suffix != "d" or not prefix:
            out.append(f"name {go._goq(name)} contains an invalid format verb, use %d suffix")
    match = (
        (doc.get("selector") or {}).get("match") if isinstance(doc.get("selector"), dict) else None
    )
    if not match:
        out.append("link selector is required")
    elif bad := _selector_error(str(match)):
        out.append(f"link selector is invalid: ERROR: <input>: {bad}")
    return out


def _selector_error(expr: str) -> str | None:
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals may contain anything
    for ref in _REFERENCE.findall(bare):
        if ref != "link":
            return f"undeclared reference to '{ref}' (in container '')"
    if bare.count('"') % 2 or bare.count("(") != bare.count(")") or _LONE_EQUALS.search(bare):
        return "Syntax error"
    return None


@rule(
    f"{NET}/link.go",
    "LinkConfigV1Alpha1.Validate, CommonLinkConfig.Validate",
    "document",
    "LinkConfig",
)
def link(doc: Doc) -> list[str]:
    out = [] if _name(doc) else ["name must be specified"]
    for i, a in enumerate(doc.get("addresses") or []):
        value = a.get("address") if isinstance(a, dict) else None
        if not value:
            out.append(f"address {i} must be specified")
        elif go.prefix_addr(value).is_unspecified:
            out.append(f"address {i} must be a valid IP address")
    for i, r in enumerate(doc.get("routes") or []):
        r = r if isinstance(r, dict) else {}
        if r.get("destination") and go.prefix_addr(r["destination"]).is_unspecified:
            out.append(f"route {i} destination must be a valid IP prefix")
        for key in ("gateway", "source"):
            if r.get(key) and _unspecified(r[key]):
                out.append(f"route {i} {key} must be a valid IP address")
    return out


def _unspecified(value: Any) -> bool:
    return go.prefix_addr(str(value)).is_unspecified


@rule(f"{NET}/time_sync.go", "TimeSyncConfigV1Alpha1.Validate", "document", "TimeSyncConfig")
def time_sync(doc: Doc) -> list[str]:
    out = []
    if (go.parse_duration(doc.get("bootTimeout", "0")) or 0.0) < 0:
        out.append("bootTimeout cannot be negative")
    if doc.get("ntp") is not None and doc.get("ptp") is not None:
        out.append("only one of ntp or ptp configuration can be specified")
    return out


@rule(
    "machinery/config/types/runtime/watchdog_timer.go",
    "WatchdogTimerV1Alpha1.Validate",
    "document",
    "WatchdogTimerConfig",
)
def watchdog(doc: Doc) -> list[str]:
    if not doc.get("device"):
        return ["watchdog device: empty value"]
    seconds = go.parse_duration(doc.get("timeout", "0")) or 0.0
    if seconds != 0 and seconds < 10:  # MinWatchdogTimeout; negative is below it too
        return ["watchdog timeout: minimum value is 10s"]
    return []


# --- conflict: a setting in both v1alpha1 and its typed document ---------------------------------


def _machine(v1: Doc) -> Doc:
    m = v1.get("machine")
    return m if isinstance(m, dict) else {}


def _sub(parent: Doc, key: str) -> Doc:
    v = parent.get(key)
    return v if isinstance(v, dict) else {}


@rule(
    f"{NET}/hostname.go",
    "HostnameConfigV1Alpha1.V1Alpha1ConflictValidate",
    "conflict",
    "HostnameConfig",
)
def hostname_conflict(doc: Doc, v1: Doc) -> list[str]:
    m = _machine(v1)
    if _sub(m, "network").get("hostname"):
        return ["static hostname is already set in v1alpha1 config"]
    # v1alpha1 AutoHostname(): Stable only with features.stableHostname, else Addr
    if go.go_bool(_sub(m, "features").get("stableHostname")):
        return ["stable hostname is already set in v1alpha1 config"]
    return []


@rule(
    f"{NET}/resolver.go",
    "ResolverConfigV1Alpha1.V1Alpha1ConflictValidate",
    "conflict",
    "ResolverConfig",
)
def resolver_conflict(doc: Doc, v1: Doc) -> list[str]:
    net = _sub(_machine(v1), "network")
    if net.get("searchDomains") is not None:
        return [".machine.network.searchDomains is already set in v1alpha1 config"]
    # v1alpha1 Resolvers() keeps only the nameservers that parse as addresses
    if any(go.addr_error(ns) is None for ns in net.get("nameservers") or []):
        return [".machine.network.nameservers is already set in v1alpha1 config"]
    if go.go_bool(net.get("disableSearchDomain")):
        return [".machine.network.disableSearchDomain is already set in v1alpha1 config"]
    return []


@rule(
    f"{NET}/time_sync.go",
    "TimeSyncConfigV1Alpha1.V1Alpha1ConflictValidate",
    "conflict",
    "TimeSyncConfig",
)
def time_sync_conflict(doc: Doc, v1: Doc) -> list[str]:
    old = _machine(v1).get("time")
    if not isinstance(old, dict):
        return []
    if go.go_bool(old.get("disabled")):
        return ["time sync cannot be disabled in both v1alpha1 and new-style configuration"]
    if old.get("servers"):
        return ["time servers cannot be specified in both v1alpha1 and new-style configuration"]
    if go.parse_duration(old.get("bootTimeout", "0")):
        return ["boot timeout cannot be specified in both v1alpha1 and new-style configuration"]
    return []
