"""The parsers Talos's Validate functions call, with Go's semantics where Python's differ.

Each names the Go function it stands for; the rules that use them cite their own upstream.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_UNIT_S["h"] = 3600.0
_BITS = re.compile(r"0|[1-9]\d*")


def parse_duration(text: Any) -> float | None:
    """Go time.ParseDuration in seconds ("1m30s", "-1m", "0"); None where Go errors.
    yaml.v3 decodes a time.Duration only from a string, never from an int."""
    if not isinstance(text, str):
        return None
    sign, body = 1.0, text
    if body[:1] in "+-" and body:
        sign, body = (-1.0 if body[0] == "-" else 1.0), body[1:]
    if body == "0":
        return 0.0
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        return None
    return sign * sum(float(n) * _UNIT_S[u] for n, u in parts)


def addr_error(text: Any) -> str | None:
    """Go netip.ParseAddr: None if valid, else Go's error text (reason abridged)."""
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return f"ParseAddr({_goq(text)}): unable to parse IP"
    return None


def prefix_error(text: Any) -> str | None:
    """Go netip.ParsePrefix: an address, '/', decimal bits without leading zeros, in range."""
    s = str(text)
    addr, slash, bits = s.partition("/")
    if not slash:
        return f"netip.ParsePrefix({_goq(s)}): no '/'"
    if "%" in addr:
        return f"netip.ParsePrefix({_goq(s)}): IPv6 zones cannot be present in a prefix"
    bad = addr_error(addr)
    if bad:
        return f"netip.ParsePrefix({_goq(s)}): {bad}"
    if not _BITS.fullmatch(bits):
        return f"netip.ParsePrefix({_goq(s)}): bad bits after slash: {_goq(bits)}"
    if int(bits) > ipaddress.ip_address(addr).max_prefixlen:
        return f"netip.ParsePrefix({_goq(s)}): prefix length out of range"
    return None


def prefix_addr(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address part of a prefix that prefix_error accepted."""
    return ipaddress.ip_address(str(text).partition("/")[0])


def subnet_or_address_ok(text: str) -> bool:
    """siderolabs/net v0.4.0 net.go ParseSubnetOrAddress: a prefix, or a bare address."""
    return prefix_error(text) is None or addr_error(text) is None


def endpoint_uri_error(text: str) -> str | None:
    """siderolabs/net v0.4.0 net.go ValidateEndpointURI (after Go url.Parse)."""
    try:
        u = urlsplit(text)
        port = u.port
    except ValueError as exc:
        return f"parse {_goq(text)}: {exc}"
    host = u.netloc.rpartition("@")[2]
    if host.count(":") > 2 and ("[" not in host or "]" not in host):
        return "IPv6 addresses MUST be enclosed by square brackets"
    if not u.hostname:
        return "hostname must not be blank"
    if port is not None and not 1 <= port <= 65535:
        return "port number must be between 1 and 65535"
    return None


# pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go isValidDNSName
_DNS_NAME = re.compile(
    r"([a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})*[._]?"
)


def valid_dns_name(name: str) -> bool:
    return bool(name) and len(name) - name.count(".") <= 255 and bool(_DNS_NAME.fullmatch(name))


# pkg/machinery/labels/validate.go (Kubernetes' qualified-name and label-value formats)
_DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QNAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def qualified_name_error(value: str) -> str | None:
    """labels.ValidateQualifiedName."""
    parts = value.split("/")
    if len(parts) > 2:
        return f"invalid format: too many slashes: {_goq(value)}"
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return f"prefix cannot be empty: {_goq(value)}"
        if len(prefix) > 253:
            return (
                f"prefix {_goq(prefix)} is invalid: domain name length exceeds limit of 253: "
                f"{_goq(prefix)}"
            )
        if not _DNS1123.fullmatch(prefix):
            return (
                f"prefix {_goq(prefix)} is invalid: domain doesn't match required format: "
                f"{_goq(prefix)}"
            )
    if not name:
        return f"name cannot be empty: {_goq(value)}"
    if len(name) > 63:
        return f"name is too long: {_goq(value)} (limit is 63)"
    if not _QNAME.fullmatch(name):
        return f"name {_goq(name)} is invalid"
    return None


def label_value_error(value: str) -> str | None:
    """labels.ValidateLabelValue."""
    if len(value) > 63:
        return f"label value length exceeds limit of 63: {_goq(value)}"
    if value and not _QNAME.fullmatch(value):
        return f"label value {_goq(value)} is invalid"
    return None


def go_bool(value: Any) -> bool:
    """pointer.SafeDeref of a *bool: absent or null is false."""
    return value is True


def _goq(value: Any) -> str:
    """Go's %q of a plain string."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
