"""What a Talos v1.13 node (and `talosctl validate`) rejects in a machine config: the stand-in's
own copy of the Validate rules of the document kinds Domum writes.

Written separately from domum_tasks/talos/genconfig/rules.py on purpose, from the same upstream
sources (siderolabs/talos pkg/machinery/config/types/network/*.go, types/runtime/watchdog_timer.go),
so a bug in Domum's copy is not silently shared by the stand-in that tests it. Standard library
only (the fake runs as a script). Messages use Talos's wording.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_DUR = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|us|ns|m|s))+$")
_DUR_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)")
_SCALE = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
# interface names a real machine has without any config (kernel/systemd naming)
_PHYSICAL = re.compile(r"^(eth\d+|en[a-z0-9]+|end\d+|wlan\d+)$")


def _seconds(text: Any) -> float | None:
    t = str(text).lstrip("+")
    neg = t.startswith("-")
    t = t.lstrip("-")
    if t == "0":
        return 0.0
    if not _DUR.match(t):
        return None
    total = sum(float(n) * _SCALE[u] for n, u in _DUR_PART.findall(t))
    return -total if neg else total


def _is_ip(v: Any) -> bool:
    try:
        ipaddress.ip_address(str(v))
        return True
    except ValueError:
        return False


def _bad_prefix(v: Any) -> bool:
    s = str(v)
    if "/" not in s:
        return True
    try:
        return ipaddress.ip_interface(s).ip.is_unspecified
    except ValueError:
        return True


def _unspecified_or_bad_ip(v: Any) -> bool:
    try:
        return ipaddress.ip_address(str(v)).is_unspecified
    except ValueError:
        return True


def _typed_errors(d: dict[str, Any]) -> list[str]:
    kind = d.get("kind")
    e: list[str] = []
    if kind == "HostnameConfig":
        auto, host = d.get("auto"), d.get("hostname") or ""
        if auto is None and not host:
            e.append("either 'auto' or 'hostname' must be set")
        if host and auto != "off":
            e.append("'auto' and 'hostname' cannot be set at the same time")
        if auto not in (None, "off", "stable"):
            e.append(f"invalid value for 'auto': {auto}")
        if host and not 0 < len(str(host).split(".")[0]) <= 63:
            e.append(f'invalid hostname "{str(host).split(".")[0]}"')
    elif kind == "Layer2VIPConfig":
        if not d.get("name"):
            e.append("name must be specified")
        elif not _is_ip(d["name"]):
            e.append("name must be a valid IP address")
        if not d.get("link"):
            e.append("link must be specified")
    elif kind == "LinkAliasConfig":
        name = str(d.get("name") or "")
        if not name:
            e.append("name must be specified")
        elif "%" in name and not re.match(r"^.+%d$", name):
            e.append(f'name "{name}" contains an invalid format verb, use %d suffix')
        match = str((d.get("selector") or {}).get("match") or "")
        bare = re.sub(r'"[^"]*"', "", match)
        if not match:
            e.append("link selector is required")
        elif (
            match.count('"') % 2
            or bare.count("(") != bare.count(")")
            or "link." not in bare
            or re.search(r"(?<![=!<>])=(?!=)", bare)
        ):
            e.append("link selector is invalid: ERROR: <input>: Syntax error")
    elif kind == "LinkConfig":
        if not d.get("name"):
            e.append("name must be specified")
        for i, a in enumerate(d.get("addresses") or []):
            if not (a or {}).get("address"):
                e.append(f"address {i} must be specified")
            elif _bad_prefix(a["address"]):
                e.append(f"address {i} must be a valid IP prefix")
        for i, r in enumerate(d.get("routes") or []):
            r = r or {}
            if r.get("destination") and _bad_prefix(r["destination"]):
                e.append(f"route {i} destination must be a valid IP prefix")
            for key in ("gateway", "source"):
                if r.get(key) and _unspecified_or_bad_ip(r[key]):
                    e.append(f"route {i} {key} must be a valid IP address")
    elif kind == "ResolverConfig":
        hd = d.get("hostDNS") or {}
        if hd and hd.get("enabled") is not True:
            for key in ("forwardKubeDNSToHost", "resolveMemberNames"):
                if hd.get(key) is True:
                    e.append(f"hostDNS.{key} cannot be enabled when hostDNS.enabled is false")
        for i, ns in enumerate(d.get("nameservers") or []):
            ns = ns or {}
            proto = ns.get("protocol") or "Do53"
            if proto in ("DoT", "DoH") and not ns.get("tlsServerName"):
                e.append(f"tlsServerName must be set when protocol is {proto}: entry {i}")
            elif proto == "Do53" and ns.get("tlsServerName"):
                e.append(f"tlsServerName must be empty when protocol is Do53: entry {i}")
            elif proto not in ("DoT", "DoH", "Do53"):
                e.append(f"unsupported DNS protocol: entry {i}")
            if not _is_ip(ns.get("address")):
                e.append(f"nameserver address must be a valid IP: entry {i}")
    elif kind == "TimeSyncConfig":
        if d.get("bootTimeout") is not None and (_seconds(d["bootTimeout"]) or 0) < 0:
            e.append("bootTimeout cannot be negative")
        if d.get("ntp") is not None and d.get("ptp") is not None:
            e.append("only one of ntp or ptp configuration can be specified")
        for s in (d.get("ntp") or {}).get("servers") or []:
            if str(s).startswith("/dev/ptp"):
                e.append(
                    f'PTP devices should be specified in the ptp section, not as NTP servers: "{s}"'
                )
        for dev in (d.get("ptp") or {}).get("devices") or []:
            if not str(dev).startswith("/dev/ptp"):
                e.append(f'PTP device should be a path under /dev/ptp: "{dev}"')
    elif kind == "WatchdogTimerConfig":
        if not d.get("device"):
            e.append("watchdog device: empty value")
        elif d.get("timeout") is not None:
            secs = _seconds(d["timeout"])
            if secs is None:
                e.append(f'time: invalid duration "{d["timeout"]}"')
            elif 0 < secs < 10:
                e.append("watchdog timeout: minimum value is 10s")
    return e


def validate_docs(docs: list[Any]) -> list[str]:
    """Problems of one machine config (all its documents), as the node reports them."""
    out: list[str] = []
    v1 = next((d for d in docs if isinstance(d, dict) and "kind" not in d), {}) or {}
    machine = v1.get("machine") or {}
    network = machine.get("network") or {}
    links: set[str] = set()
    kinds: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        if isinstance(d, dict) and "kind" in d:
            kinds.setdefault(str(d["kind"]), []).append(d)
            if d["kind"] in (
                "LinkConfig",
                "LinkAliasConfig",
                "BondConfig",
                "VLANConfig",
                "BridgeConfig",
            ):
                links.add(str(d.get("name")))
            label = d["kind"] + (f" {d['name']}" if d.get("name") else "")
            out += [f"{label}: {m}" for m in _typed_errors(d)]
    if kinds.get("HostnameConfig") and network.get("hostname"):
        out.append("HostnameConfig: static hostname is already set in v1alpha1 config")
    if kinds.get("ResolverConfig") and network.get("nameservers"):
        out.append("ResolverConfig: .machine.network.nameservers is already set in v1alpha1 config")
    if kinds.get("TimeSyncConfig") and (machine.get("time") or {}).get("servers"):
        out.append(
            "TimeSyncConfig: time servers cannot be specified in both v1alpha1 and new-style configuration"
        )
    for vip in kinds.get("Layer2VIPConfig", []):
        want = str(vip.get("link") or "")
        if want and want not in links and not _PHYSICAL.match(want):
            out.append(
                f"Layer2VIPConfig {vip.get('name')}: link {want!r} not found: no link or alias has that name"
            )
    return out
