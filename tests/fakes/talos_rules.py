"""What talosctl v1.13.9 (`talosctl validate`, and a node before it accepts a config) rejects: the
stand-in's own reading of siderolabs/talos v1.13.9, written apart from Domum's
domum_tasks/talos/genconfig/rules/ so a divergence there fails a test instead of being shared.

Sources (siderolabs/talos, tag v1.13.9, under pkg/machinery/): configloader/internal/decoder/
decoder.go (decode into the Go types), config/container/container.go (New, Validate),
config/types/v1alpha1/v1alpha1_validation.go (Config.Validate, ClusterConfig.Validate,
ValidateCNI, KubeletConfig.Validate, EtcdConfig.Validate), config/types/network/{hostname,
layer2_vip,link_alias,link,resolver,time_sync}.go, config/types/runtime/watchdog_timer.go,
labels/validate.go; siderolabs/net v0.4.0 (ParseSubnetOrAddress, ValidateEndpointURI).
Unlike Domum's offline model, the stand-in always checks the secrets (CAs): real talosctl does.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlparse

Doc = dict[str, Any]

# v1alpha1 keys the Go types still decode but the published JSON schema leaves out (deprecated);
# talosctl accepts them, so the stand-in's schema check must not see them.
DECODED_NOT_IN_SCHEMA: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("persist",),
    ("machine",): ("network", "disks", "env", "time", "registries", "systemDiskEncryption"),
    ("machine", "install"): ("extraKernelArgs", "extensions", "bootloader"),
    ("machine", "features"): ("rbac", "stableHostname", "apidCheckExtKeyUsage"),
    ("cluster",): ("allowSchedulingOnMasters",),
    ("cluster", "apiServer"): ("disablePodSecurityPolicy",),
    ("cluster", "etcd"): ("subnet",),
}

_LINKISH = ["BondConfig", "BridgeConfig", "DummyLinkConfig", "LinkConfig", "VLANConfig"]
_LINKISH += ["VRFConfig", "WireguardConfig"]
_AUTO_KINDS = ("off", "talos-addr", "stable")  # nethelpers AutoHostnameKind
_PAIRS = {("Layer2VIPConfig", "HCloudVIPConfig"), ("UserVolumeConfig", "ExistingVolumeConfig")}


def without_deprecated(doc: Doc) -> Doc:
    """A copy of a v1alpha1 document without the DECODED_NOT_IN_SCHEMA keys."""
    if "kind" in doc:
        return doc
    out = dict(doc)
    for path, keys in DECODED_NOT_IN_SCHEMA.items():
        node: Any = out
        for p in path:
            if not isinstance(node, dict) or not isinstance(node.get(p), dict):
                node = None
                break
            node[p] = dict(node[p])
            node = node[p]
        if isinstance(node, dict):
            for k in keys:
                node.pop(k, None)
    return out


# ---------------------------------------------------------------- Go parsing
def _ip_ok(s: Any) -> bool:
    try:
        ipaddress.ip_address(str(s))
    except ValueError:
        return False
    return True


def _cidr_ok(s: Any) -> bool:
    a, sep, bits = str(s).partition("/")
    if not sep or "%" in a or not _ip_ok(a) or not re.fullmatch(r"0|[1-9][0-9]*", bits):
        return False
    return int(bits) <= (32 if ipaddress.ip_address(a).version == 4 else 128)


def _unspec(s: Any) -> bool:
    return ipaddress.ip_address(str(s).split("/")[0]).is_unspecified


def _dur(v: Any) -> float | None:
    """time.ParseDuration (only strings decode into a time.Duration)."""
    if not isinstance(v, str):
        return None
    m = re.fullmatch(r"([-+]?)((?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|ms|s|m|h))+|0)", v)
    if not m:
        return None
    scale = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9.]+)(ns|us|µs|ms|s|m|h)", m.group(2))
    total = sum(float(n) * scale[u] for n, u in parts)
    return -total if m.group(1) == "-" else total


def _subnet_or_ip(s: str) -> bool:
    return _cidr_ok(s) or _ip_ok(s)


def _q(s: Any) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _get(d: Any, *path: str) -> Any:
    for p in path:
        d = d.get(p) if isinstance(d, dict) else None
    return d


# ---------------------------------------------------------------- decode
def _decode_errors(d: Doc) -> list[str]:
    kind = d.get("kind")
    bad: list[str] = []
    if kind == "LinkConfig":
        for a in d.get("addresses") or []:
            v = _get(a, "address")
            if v and not _cidr_ok(v):
                bad.append(
                    f"netip.ParsePrefix({_q(v)}): " + ("no '/'" if "/" not in str(v) else "invalid")
                )
        for r in d.get("routes") or []:
            v = _get(r, "destination")
            if v and not _cidr_ok(v):
                bad.append(
                    f"netip.ParsePrefix({_q(v)}): " + ("no '/'" if "/" not in str(v) else "invalid")
                )
            bad += [
                f"ParseAddr({_q(_get(r, k))}): unable to parse IP"
                for k in ("gateway", "source")
                if _get(r, k) and not _ip_ok(_get(r, k))
            ]
    elif kind == "ResolverConfig":
        for ns in d.get("nameservers") or []:
            v = _get(ns, "address")
            if v and not _ip_ok(v):
                bad.append(f"ParseAddr({_q(v)}): unable to parse IP")
    elif kind in ("TimeSyncConfig", "WatchdogTimerConfig"):
        key = "bootTimeout" if kind == "TimeSyncConfig" else "timeout"
        if key in d and d[key] is not None and _dur(d[key]) is None:
            bad.append(f"time: invalid duration {_q(d[key])}")
    elif kind == "HostnameConfig" and str(d.get("auto") or "off").lower() not in _AUTO_KINDS:
        bad.append(f"{d['auto']} does not belong to AutoHostnameKind values")
    return bad


# ---------------------------------------------------------------- typed documents
def _doc_errors(d: Doc) -> list[str]:
    kind, name = d.get("kind"), str(d.get("name") or "")
    e: list[str] = []
    if kind == "HostnameConfig":
        auto = str(d["auto"]).lower() if d.get("auto") is not None else None
        host = str(d.get("hostname") or "")
        if auto is None and host == "":
            e.append("either 'auto' or 'hostname' must be set")
        if host and (auto or "off") != "off":
            e.append("'auto' and 'hostname' cannot be set at the same time")
        if auto == "talos-addr":
            e.append("invalid value for 'auto': talos-addr")
        if host and len(host) > 253:
            e.append(f"fqdn is too long: {len(host)}")
        first = host.split(".")[0]
        if host and (first == "" or len(first) > 63):
            e.append(f"invalid hostname {_q(first)}")
    elif kind == "Layer2VIPConfig":
        if name == "":
            e.append("name must be specified")
        elif not _ip_ok(name):
            e.append(f"name must be a valid IP address: ParseAddr({_q(name)}): unable to parse IP")
        if not d.get("link"):
            e.append("link must be specified")
    elif kind == "LinkAliasConfig":
        if name == "":
            e.append("name must be specified")
        elif "%" in name and not re.fullmatch(r"[^%]+%d", name):
            e.append(f"name {_q(name)} contains an invalid format verb, use %d suffix")
        expr = str(_get(d, "selector", "match") or "")
        if not expr:
            e.append("link selector is required")
        else:
            plain = re.sub(r'"(?:\\.|[^"\\])*"', "S", expr)
            roots = [
                r for r in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\.", plain) if r != "link"
            ]
            if roots:  # celenv.LinkLocator declares only `link` (and glob, mac)
                e.append(
                    f"link selector is invalid: ERROR: <input>:1:1: undeclared reference to '{roots[0]}' (in container '')"
                )
            elif (
                '"' in plain
                or plain.count("(") != plain.count(")")
                or re.search(r"(?<![=!<>])=(?!=)", plain)
            ):
                e.append("link selector is invalid: ERROR: <input>: Syntax error")
    elif kind == "LinkConfig":
        if name == "":
            e.append("name must be specified")
        for i, a in enumerate(d.get("addresses") or []):
            v = _get(a, "address")
            if not v:
                e.append(f"address {i} must be specified")
            elif _unspec(v):
                e.append(f"address {i} must be a valid IP address")
        for i, r in enumerate(d.get("routes") or []):
            if _get(r, "destination") and _unspec(r["destination"]):
                e.append(f"route {i} destination must be a valid IP prefix")
            e += [
                f"route {i} {k} must be a valid IP address"
                for k in ("gateway", "source")
                if _get(r, k) and _unspec(r[k])
            ]
    elif kind == "TimeSyncConfig":
        if "bootTimeout" in d and (_dur(d["bootTimeout"]) or 0) < 0:
            e.append("bootTimeout cannot be negative")
        if d.get("ntp") is not None and d.get("ptp") is not None:
            e.append("only one of ntp or ptp configuration can be specified")
    elif kind == "WatchdogTimerConfig":
        if not d.get("device"):
            return ["watchdog device: empty value"]
        t = _dur(d.get("timeout")) if d.get("timeout") is not None else 0.0
        if t and t < 10:
            return ["watchdog timeout: minimum value is 10s"]
    return e


def _conflict(d: Doc, v1: Doc) -> str | None:
    """V1Alpha1ConflictValidate of HostnameConfig, ResolverConfig, TimeSyncConfig."""
    net, kind = _get(v1, "machine", "network") or {}, d.get("kind")
    if kind == "HostnameConfig":
        if net.get("hostname"):
            return "static hostname is already set in v1alpha1 config"
        if _get(v1, "machine", "features", "stableHostname") is True:
            return "stable hostname is already set in v1alpha1 config"
    if kind == "ResolverConfig":
        if net.get("searchDomains") is not None:
            return ".machine.network.searchDomains is already set in v1alpha1 config"
        if [s for s in net.get("nameservers") or [] if _ip_ok(s)]:
            return ".machine.network.nameservers is already set in v1alpha1 config"
        if net.get("disableSearchDomain") is True:
            return ".machine.network.disableSearchDomain is already set in v1alpha1 config"
    time = _get(v1, "machine", "time")
    if kind == "TimeSyncConfig" and isinstance(time, dict):
        if time.get("disabled") is True:
            return "time sync cannot be disabled in both v1alpha1 and new-style configuration"
        if time.get("servers"):
            return "time servers cannot be specified in both v1alpha1 and new-style configuration"
        if _dur(time.get("bootTimeout")):
            return "boot timeout cannot be specified in both v1alpha1 and new-style configuration"
    return None


# ---------------------------------------------------------------- v1alpha1
def _label_key_error(k: str) -> str | None:
    """labels.ValidateQualifiedName."""
    if k.count("/") > 1:
        return f"invalid format: too many slashes: {_q(k)}"
    prefix, _, name = k.rpartition("/")
    if "/" in k and prefix == "":
        return f"prefix cannot be empty: {_q(k)}"
    dns1123 = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    if prefix and (len(prefix) > 253 or not re.fullmatch(dns1123, prefix)):
        why = (
            "domain name length exceeds limit of 253"
            if len(prefix) > 253
            else "domain doesn't match required format"
        )
        return f"prefix {_q(prefix)} is invalid: {why}: {_q(prefix)}"
    if name == "":
        return f"name cannot be empty: {_q(k)}"
    if len(name) > 63:
        return f"name is too long: {_q(k)} (limit is 63)"
    if not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name):
        return f"name {_q(name)} is invalid"
    return None


def _label_value_error(v: str) -> str | None:
    if len(v) > 63:
        return f"label value length exceeds limit of 63: {_q(v)}"
    if v and not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", v):
        return f"label value {_q(v)} is invalid"
    return None


def _multi(errs: list[str]) -> str:
    n = len(errs)
    return (
        f"{n} error{'s' if n > 1 else ''} occurred:" + "".join(f"\n\t* {x}" for x in errs) + "\n\n"
    )


def _endpoint_error(ep: str) -> str | None:
    u = urlparse(ep)
    if u.netloc.count(":") > 2 and not ("[" in u.netloc and "]" in u.netloc):
        return "IPv6 addresses MUST be enclosed by square brackets"
    if not u.hostname:
        return "hostname must not be blank"
    port = (
        u.netloc.rsplit("]", 1)[-1].rpartition(":")[2] if ":" in u.netloc.rsplit("]", 1)[-1] else ""
    )
    if port and not port.isdigit():
        return "port number must be numeric"
    if port and not 1 <= int(port) <= 65535:
        return "port number must be between 1 and 65535"
    return None


def _v1alpha1_errors(v1: Doc, mode: str) -> list[str]:
    m = v1.get("machine")
    if not isinstance(m, dict):
        return ["machine instructions are required"]
    t = {"": "worker", "join": "worker"}.get(str(m.get("type", "")), str(m.get("type", "")))
    cp = t in ("controlplane", "init")
    e: list[str] = []
    c = v1.get("cluster")
    # ClusterConfig.Validate
    if not isinstance(c, dict):
        e.append("cluster instructions are required")
    elif not _get(c, "controlPlane", "endpoint"):
        e.append("cluster controlplane endpoint is required")
    else:
        if err := _endpoint_error(str(c["controlPlane"]["endpoint"])):
            e.append(f"invalid controlplane endpoint: {err}")
        dom = _get(c, "network", "dnsDomain")
        dns = r"([a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})*[._]?"
        if dom and (len(dom) - dom.count(".") > 255 or not re.fullmatch(dns, str(dom))):
            e.append(f"{_q(dom)} is not a valid DNS name")
        etcd = c.get("etcd")
        if isinstance(etcd, dict) and not cp:
            e.append("etcd config is only allowed on control plane machines")
        elif isinstance(etcd, dict):
            if etcd.get("ca") is None:
                e.append("key/cert combination should not be empty")
            adv = list(etcd.get("advertisedSubnets") or [])
            if etcd.get("subnet") and adv:
                e.append("etcd subnet can't be set when advertised subnets are set")
            adv = adv or ([etcd["subnet"]] if etcd.get("subnet") else [])
            e += [
                f"etcd advertised subnet is not valid: {_q(s.lstrip('!'))}"
                for s in map(str, adv)
                if not _subnet_or_ip(s[1:] if s.startswith("!") else s)
            ]
            lis = list(etcd.get("listenSubnets") or []) or adv
            e += [
                f"etcd listen subnet is not valid: {_q(s.lstrip('!'))}"
                for s in map(str, lis)
                if not _subnet_or_ip(s[1:] if s.startswith("!") else s)
            ]
        if not cp and _get(c, "ca", "key"):
            e.append("cluster CA key is not allowed on non-controlplane nodes (.cluster.ca)")
        seen: set[str] = set()
        for im in c.get("inlineManifests") or []:
            n = str(_get(im, "name") or "")
            if not n:
                e.append("inline manifest name can't be empty")
            elif n in seen:
                e.append(f"inline manifest name {_q(n)} is duplicate")
            seen.add(n)
    inst = m.get("install")
    if mode == "metal":
        if not isinstance(inst, dict):
            e.append('install instructions are required in "metal" mode')
        else:
            if not inst.get("disk") and not inst.get("diskSelector"):
                e.append("either install disk or diskSelector should be defined")
            if inst.get("extraKernelArgs") and inst.get("grubUseUKICmdline") is True:
                e.append(
                    "install.extraKernelArgs and install.grubUseUKICmdline can't be used together"
                )
    hd = _get(m, "features", "hostDNS") or {}
    if mode == "container":
        if hd.get("enabled") is not True:
            e.append(
                "feature HostDNS should be enabled in container mode (.machine.features.hostDNS.enabled)"
            )
        if hd.get("forwardKubeDNSToHost") is not True:
            e.append(
                "feature HostDNS should forward kube-dns to host in container mode (.machine.features.hostDNS.forwardKubeDNSToHost)"
            )
    if hd.get("forwardKubeDNSToHost") is True and hd.get("enabled") is not True:
        e.append(
            "feature hostDNS.forwardKubeDNSToHost requires hostDNS.enabled to be true (.machine.features.hostDNS)"
        )
    ca = m.get("ca") if isinstance(m.get("ca"), dict) else None
    if ca is None and not m.get("acceptedCAs"):
        e.append("issuing CA or some accepted CAs are required (.machine.ca, machine.acceptedCAs)")
    if cp:
        cni = _get(c, "network", "cni")
        if isinstance(cni, dict):
            name, urls, fl = cni.get("name") or "", cni.get("urls") or [], cni.get("flannel") or {}
            if name not in ("flannel", "custom", "none"):
                e.append('cni name should be one of ["flannel", "custom", "none"]')
            else:
                if urls and name != "custom":
                    e.append(f'"urls" field should be empty for "{name}" CNI')
                if name != "flannel" and fl.get("extraArgs"):
                    e.append(f'"flanneldExtraArgs" field should be empty for "{name}" CNI')
                if name != "flannel" and fl.get("kubeNetworkPoliciesEnabled") is True:
                    e.append(
                        f'"flannelKubeNetworkPoliciesEnabled" should not be enabled for "{name}" CNI'
                    )
                if name == "custom":
                    e += [x for x in (_endpoint_error(str(u)) for u in urls) if x]
        if ca is None:
            e.append("issuing CA is required (.machine.ca)")
        elif not ca.get("key"):
            e.append("issuing CA key is required for controlplane nodes (.machine.ca.key)")
    elif t == "worker":
        for dev in _get(m, "network", "interfaces") or []:
            for holder in [dev, *(_get(dev, "vlans") or [])]:
                if isinstance(_get(holder, "vip"), dict):
                    e.append("virtual (shared) IP is not allowed on non-controlplane nodes")
        if ca is not None and ca.get("key"):
            e.append(
                "issuing Talos API CA key is not allowed on non-controlplane nodes (.machine.ca)"
            )
        if ca is not None and not ca.get("crt") and not m.get("acceptedCAs"):
            e.append(
                "trusted CA certificates are required on non-controlplane nodes (.machine.ca.crt, .machine.acceptedCAs)"
            )
        if _get(c, "ca", "key"):
            e.append(
                "issuing Kubernetes API CA key is not allowed on non-controlplane nodes (.cluster.ca)"
            )
    else:
        e.append(f"unknown machine type {_q(m.get('type'))}")
    kub = m.get("kubelet") or {}
    for s in _get(kub, "nodeIP", "validSubnets") or []:
        s = str(s)[1:] if str(s).startswith("!") else str(s)
        if not _subnet_or_ip(s):
            e.append(f"kubelet nodeIP subnet is not valid: {_q(s)}")
    protected = "apiVersion authentication authorization cgroupRoot kind kubeletCgroups port protectKernelDefaults resolvConf rotateCertificates systemCgroups staticPodPath seccompDefault"
    e += [
        f"kubelet configuration field {_q(f)} can't be overridden"
        for f in protected.split()
        if f in (_get(kub, "extraConfig") or {})
    ]
    labels = m.get("nodeLabels") or {}
    errs = [
        x
        for k in sorted(labels)
        for x in (_label_key_error(str(k)), _label_value_error(str(labels[k] or "")))
        if x
    ]
    if errs:
        e.append("invalid machine node labels: " + _multi(errs))
    terrs: list[str] = []
    for k, v in sorted((m.get("nodeTaints") or {}).items()):
        if x := _label_key_error(str(k)):
            terrs.append(x)
            continue
        val, has, eff = str(v or "").partition(":")
        eff = eff if has else val
        if eff not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            terrs.append(f"invalid taint effect: {_q(eff)}")
        elif has and (x := _label_value_error(val)):
            terrs.append(x)
    if terrs:
        e.append("invalid machine node taints: " + _multi(terrs))
    if _get(m, "features", "kubernetesTalosAPIAccess", "enabled") is True and not cp:
        e.append(
            "feature Kubernetes Talos API Access can only be enabled on control plane machines"
        )
    if v1.get("persist") is False:
        e.append(".persist should be enabled")
    return e


# ---------------------------------------------------------------- the whole config
def validate_docs(docs: list[Any], mode: str = "metal") -> list[str]:
    """Problems of one machine config (all its documents), as talosctl v1.13.9 reports them: a
    decode or container failure stops there; else v1alpha1, each document, then the conflicts."""
    out: list[str] = []
    ids: set[tuple[str, str, str]] = set()
    for i, d in enumerate(docs):
        if d is None:
            continue
        if not isinstance(d, dict):
            out.append(f"expected a YAML document (document {i + 1})")
            continue
        key = (str(d.get("apiVersion", "")), str(d.get("kind", "v1alpha1")), str(d.get("name", "")))
        if key in ids:
            out.append(f"duplicate document {'/'.join(key)} is not allowed")
        ids.add(key)
        out += [f"error decoding document {'/'.join(key)}: {x}" for x in _decode_errors(d)]
    if out:
        return out
    typed = [d for d in docs if isinstance(d, dict) and "kind" in d]
    seen: list[str] = []
    for d in typed:  # container.New
        me = f"{d['kind']}/{d.get('name') or ''}"
        if me in seen:
            return [f"duplicate document: {me}"]
        for other in seen:
            ok, on = other.split("/", 1)
            if on == (d.get("name") or "") and (
                (ok in _LINKISH and d["kind"] in _LINKISH)
                or (ok, d["kind"]) in _PAIRS
                or (d["kind"], ok) in _PAIRS
            ):
                return [f"conflicting documents: {other} and {me}"]
        seen.append(me)
    v1 = next((d for d in docs if isinstance(d, dict) and "kind" not in d), None)
    if v1 is not None:
        out += [f"v1alpha1.Config: {x}" for x in _v1alpha1_errors(v1, mode)]
    for d in typed:
        label = f"{d['kind']}/{d['name']}" if "name" in d else str(d["kind"])
        out += [f"{label}: {x}" for x in _doc_errors(d)]
    if v1 is not None:
        out += [x for x in (_conflict(d, v1) for d in typed) if x]
    return out
