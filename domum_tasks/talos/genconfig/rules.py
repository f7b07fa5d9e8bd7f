"""The semantic rules Talos v1.13 runs on a merged machine config, for the kinds Domum writes.

Written from the `Validate` / `V1Alpha1ConflictValidate` functions of siderolabs/talos
pkg/machinery/config/types/network/{hostname,layer2_vip,link_alias,link,resolver,time_sync}.go and
.../types/runtime/watchdog_timer.go, plus the checks `talosctl validate --mode metal` makes on the
v1alpha1 document that Domum's patches touch. The JSON schema (schema.py) proves a field exists;
these rules prove the combination is one a node accepts. Messages keep Talos's wording so a search
for them finds the upstream code.

`validate(docs)` takes the documents of ONE merged machine config (v1alpha1 first) and returns
problems as "<Kind>[ <name>]: <message>"; an empty list means a node would accept it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]

MIN_WATCHDOG_TIMEOUT_S = 10.0
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PTP_PREFIX = "/dev/ptp"
_MACHINE_TYPES = ("controlplane", "worker", "init")
# A CEL link selector (Talos parses it with the LinkLocator environment). We check its shape, not
# full CEL: it reads a `link.` field, quotes and parentheses balance, and `=` is never alone.
_LINK_FIELD = re.compile(r"\blink\.[a-z_]+")
_LONE_EQUALS = re.compile(r"(?<![=!<>])=(?!=)")


def go_duration_s(value: Any) -> float | None:
    """Seconds of a Go duration string ("5m", "1m30s", "0"); None if it is not one."""
    text = str(value).strip()
    if text in ("0", ""):
        return 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    parts = _GO_DURATION.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        return None
    return sign * sum(float(n) * _UNIT_S[u] for n, u in parts)


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        return None


def _prefix(value: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    text = str(value)
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


# --- per kind ------------------------------------------------------------------------------------


def hostname(doc: Doc) -> list[str]:
    auto, name = doc.get("auto"), doc.get("hostname") or ""
    out = []
    if auto is None and not name:
        out.append("either 'auto' or 'hostname' must be set")
    if auto != "off" and name:
        out.append("'auto' and 'hostname' cannot be set at the same time")
    if auto not in (None, "off", "stable"):
        out.append(f"invalid value for 'auto': {auto}")
    if name:
        if len(name) > 253:
            out.append(f"fqdn is too long: {len(name)}")
        label = str(name).split(".", 1)[0]
        if not 0 < len(label) <= 63:
            out.append(f'invalid hostname "{label}"')
    return out


def layer2_vip(doc: Doc) -> list[str]:
    out = []
    if not doc.get("name"):
        out.append("name must be specified")
    elif _ip(doc["name"]) is None:
        out.append(f"name must be a valid IP address: ParseAddr({str(doc['name'])!r})")
    if not doc.get("link"):
        out.append("link must be specified")
    return out


def link_alias(doc: Doc) -> list[str]:
    out = []
    name = str(doc.get("name") or "")
    if not name:
        out.append("name must be specified")
    elif "%" in name:
        prefix, _, suffix = name.partition("%")
        if suffix != "d" or not prefix:
            out.append(f'name "{name}" contains an invalid format verb, use %d suffix')
    match = (doc.get("selector") or {}).get("match")
    if not match:
        out.append("link selector is required")
    elif not _selector_ok(str(match)):
        out.append(f"link selector is invalid: cannot parse {match!r} as a boolean CEL expression")
    return out


def _selector_ok(expr: str) -> bool:
    outside = re.sub(r'"[^"]*"', '""', expr)  # string literals may contain anything
    return (
        expr.count('"') % 2 == 0
        and outside.count("(") == outside.count(")")
        and _LINK_FIELD.search(outside) is not None
        and _LONE_EQUALS.search(outside) is None
    )


def link(doc: Doc) -> list[str]:
    out = [] if doc.get("name") else ["name must be specified"]
    for i, addr in enumerate(doc.get("addresses") or []):
        value = (addr or {}).get("address")
        parsed = _prefix(value)
        if not value:
            out.append(f"address {i} must be specified")
        elif parsed is None:
            out.append(f"address {i} must be a valid IP prefix")
        elif parsed.ip.is_unspecified:
            out.append(f"address {i} must be a valid IP address")
    for i, route in enumerate(doc.get("routes") or []):
        route = route or {}
        dest = route.get("destination")
        if dest:
            parsed = _prefix(dest)
            if parsed is None or parsed.ip.is_unspecified:
                out.append(f"route {i} destination must be a valid IP prefix")
        for key in ("gateway", "source"):
            if route.get(key):
                ip = _ip(route[key])
                if ip is None or ip.is_unspecified:
                    out.append(f"route {i} {key} must be a valid IP address")
    return out


def resolver(doc: Doc) -> list[str]:
    out = []
    host_dns = doc.get("hostDNS") or {}
    if host_dns and host_dns.get("enabled") is not True:
        for key in ("forwardKubeDNSToHost", "resolveMemberNames"):
            if host_dns.get(key) is True:
                out.append(f"hostDNS.{key} cannot be enabled when hostDNS.enabled is false")
    for i, ns in enumerate(doc.get("nameservers") or []):
        ns = ns or {}
        proto, sni = ns.get("protocol") or "", ns.get("tlsServerName") or ""
        if proto in ("DoT", "DoH"):
            if not sni:
                out.append(f"tlsServerName must be set when protocol is {proto}: entry {i}")
        elif proto in ("", "Do53"):
            if sni:
                out.append(f"tlsServerName must be empty when protocol is Do53: entry {i}")
        else:
            out.append(f"unsupported DNS protocol: entry {i}")
        if _ip(ns.get("address")) is None:
            out.append(f"nameserver address must be a valid IP: entry {i}")
    return out


def time_sync(doc: Doc) -> list[str]:
    out = []
    boot = doc.get("bootTimeout")
    if boot is not None and (go_duration_s(boot) or 0.0) < 0:
        out.append("bootTimeout cannot be negative")
    ntp, ptp = doc.get("ntp"), doc.get("ptp")
    if ntp is not None and ptp is not None:
        out.append("only one of ntp or ptp configuration can be specified")
    for server in (ntp or {}).get("servers") or []:
        if str(server).startswith(_PTP_PREFIX):
            out.append(
                f'PTP devices should be specified in the ptp section, not as NTP servers: "{server}"'
            )
    for device in (ptp or {}).get("devices") or []:
        if not str(device).startswith(_PTP_PREFIX):
            out.append(f'PTP device should be a path under {_PTP_PREFIX}: "{device}"')
    return out


def watchdog(doc: Doc) -> list[str]:
    if not doc.get("device"):
        return ["watchdog device: empty value"]
    timeout = doc.get("timeout")
    if timeout is not None:
        seconds = go_duration_s(timeout)
        if seconds is None:
            return [f"watchdog timeout: {timeout!r} is not a duration"]
        if 0 < seconds < MIN_WATCHDOG_TIMEOUT_S:
            return ["watchdog timeout: minimum value is 10s"]
    return []


KIND_RULES: dict[str, Callable[[Doc], list[str]]] = {
    "HostnameConfig": hostname,
    "Layer2VIPConfig": layer2_vip,
    "LinkAliasConfig": link_alias,
    "LinkConfig": link,
    "ResolverConfig": resolver,
    "TimeSyncConfig": time_sync,
    "WatchdogTimerConfig": watchdog,
}


# --- the v1alpha1 document and the rules across documents ----------------------------------------


def v1alpha1(doc: Doc, mode: str = "metal") -> list[str]:
    machine = doc.get("machine") or {}
    out = []
    if machine.get("type") not in _MACHINE_TYPES:
        out.append(f'machine.type: unknown machine type "{machine.get("type")}"')
    endpoint = ((doc.get("cluster") or {}).get("controlPlane") or {}).get("endpoint")
    if not endpoint or not str(endpoint).startswith("https://"):
        out.append("cluster.controlPlane.endpoint: must be an https:// URL")
    install = machine.get("install") or {}
    if mode == "metal" and not (install.get("disk") or install.get("diskSelector")):
        out.append("machine.install: an install disk or diskSelector should be defined")
    return out


def _conflicts(v1: Doc, by_kind: dict[str, list[Doc]]) -> list[str]:
    """V1Alpha1ConflictValidate: a setting may live in v1alpha1 or in its typed document."""
    machine = v1.get("machine") or {}
    network = machine.get("network") or {}
    out = []
    if by_kind.get("HostnameConfig"):
        if network.get("hostname"):
            out.append("HostnameConfig: static hostname is already set in v1alpha1 config")
        if (machine.get("features") or {}).get("stableHostname") is True:
            out.append("HostnameConfig: stable hostname is already set in v1alpha1 config")
    for res in by_kind.get("ResolverConfig", []):
        if network.get("nameservers"):
            out.append(
                "ResolverConfig: .machine.network.nameservers is already set in v1alpha1 config"
            )
        if network.get("searchDomains"):
            out.append(
                "ResolverConfig: .machine.network.searchDomains is already set in v1alpha1 config"
            )
        if res.get("hostDNS") and (machine.get("features") or {}).get("hostDNS"):
            out.append(
                "ResolverConfig: .machine.features.hostDNS is already set in v1alpha1 config"
            )
    if by_kind.get("TimeSyncConfig"):
        old = machine.get("time") or {}
        if old.get("disabled") is True:
            out.append(
                "TimeSyncConfig: time sync cannot be disabled in both v1alpha1 and new-style "
                "configuration"
            )
        if old.get("servers"):
            out.append(
                "TimeSyncConfig: time servers cannot be specified in both v1alpha1 and new-style "
                "configuration"
            )
    return out


def _links(by_kind: dict[str, list[Doc]]) -> set[str]:
    named = ("LinkConfig", "LinkAliasConfig", "BondConfig", "BridgeConfig", "VLANConfig")
    return {str(d.get("name")) for k in named for d in by_kind.get(k, []) if d.get("name")}


def validate(docs: list[Any], mode: str = "metal") -> list[str]:
    """Problems of one merged machine config, as a node running Talos v1.13 would report them."""
    problems: list[str] = []
    v1 = [d for d in docs if isinstance(d, dict) and "kind" not in d]
    typed = [d for d in docs if isinstance(d, dict) and "kind" in d]
    if any(not isinstance(d, dict) for d in docs):
        problems.append("(document): not a mapping")
    if len(v1) != 1 or v1[0].get("version") != "v1alpha1":
        problems.append('v1alpha1: config version must be "v1alpha1" (exactly one such document)')
    else:
        problems += [f"v1alpha1: {p}" for p in v1alpha1(v1[0], mode)]
    by_kind: dict[str, list[Doc]] = {}
    seen: set[tuple[str, str]] = set()
    for d in typed:
        kind, name = str(d.get("kind")), str(d.get("name") or "")
        if (kind, name) in seen:
            problems.append(f"{kind} {name}: duplicate document (same kind and name)".rstrip())
        seen.add((kind, name))
        by_kind.setdefault(kind, []).append(d)
        rule = KIND_RULES.get(kind)
        label = f"{kind} {name}".rstrip() if name else kind
        if rule is not None:
            problems += [f"{label}: {p}" for p in rule(d)]
    if v1:
        problems += _conflicts(v1[0], by_kind)
    # Layer2VIPConfig.link "must match exactly one link": Domum's configs name their links, so a
    # link nobody defines or aliases would leave the VIP unassigned on every control plane.
    links = _links(by_kind)
    for vip in by_kind.get("Layer2VIPConfig", []):
        want = vip.get("link")
        if want and str(want) not in links:
            known = ", ".join(sorted(links)) or "none"
            problems.append(
                f"Layer2VIPConfig {vip.get('name')}: link {want!r} is neither a configured link "
                f"nor a LinkAliasConfig alias (defined: {known})"
            )
    return problems
