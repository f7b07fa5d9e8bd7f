"""Rules of the v1alpha1 document: v1alpha1.Config.Validate of siderolabs/talos v1.13.9
(pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go) and the functions it calls, for the
sections Domum's patches and `talosctl gen config` write. Not modelled: legacy
machine.network.interfaces addressing, bonds, wireguard, disks, disk encryption, kubespan,
logging, external cloud provider, discovery, apiServer/controllerManager/scheduler resources,
registries, base runtime spec overrides.
"""

from __future__ import annotations

from typing import Any

from . import goparse as go
from .registry import Doc, rule

V = "machinery/config/types/v1alpha1/v1alpha1_validation.go"
_CONTROL = ("controlplane", "init")
_TYPES = {"controlplane": "controlplane", "init": "init", "worker": "worker", "join": "worker"}
_TYPES[""] = "worker"  # config/machine/machine.go ParseType (Talos warns)
# pkg/machinery/kubelet/kubelet.go ProtectedConfigurationFields
_KUBELET_PROTECTED = (
    "apiVersion",
    "authentication",
    "authorization",
    "cgroupRoot",
    "kind",
    "kubeletCgroups",
    "port",
    "protectKernelDefaults",
    "resolvConf",
    "rotateCertificates",
    "systemCgroups",
    "staticPodPath",
    "seccompDefault",
)
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")  # constants.ValidEffects


def _d(parent: Any, key: str) -> Doc:
    v = parent.get(key) if isinstance(parent, dict) else None
    return v if isinstance(v, dict) else {}


def machine_type(v1: Doc) -> str:
    """config/machine/machine.go ParseType: the type Talos reads ("join" is the old worker)."""
    return _TYPES.get(str(_d(v1, "machine").get("type", "")), "unknown")


@rule(V, "Config.Validate (machine instructions)", "v1alpha1")
def machine_required(v1: Doc, mode: str) -> list[str]:
    """Talos stops validating v1alpha1 here; validate() does too."""
    return [] if isinstance(v1.get("machine"), dict) else ["machine instructions are required"]


@rule(V, "ClusterConfig.Validate", "v1alpha1")
def cluster(v1: Doc, mode: str) -> list[str]:
    c = v1.get("cluster")
    if not isinstance(c, dict):
        return ["cluster instructions are required"]
    endpoint = _d(c, "controlPlane").get("endpoint")
    if not endpoint:
        return ["cluster controlplane endpoint is required"]
    out = []
    if bad := go.endpoint_uri_error(str(endpoint)):
        out.append(f"invalid controlplane endpoint: {bad}")
    domain = _d(c, "network").get("dnsDomain")
    if domain and not go.valid_dns_name(str(domain)):
        out.append(f"{go._goq(domain)} is not a valid DNS name")
    if isinstance(c.get("etcd"), dict) and machine_type(v1) not in _CONTROL:
        out.append("etcd config is only allowed on control plane machines")
    names: set[str] = set()
    for m in c.get("inlineManifests") or []:  # ClusterInlineManifests.Validate
        name = str((m or {}).get("name") or "")
        if not name:
            out.append("inline manifest name can't be empty")
        elif name in names:
            out.append(f"inline manifest name {go._goq(name)} is duplicate")
        names.add(name)
    return out


@rule(V, "EtcdConfig.Validate", "v1alpha1")
def etcd(v1: Doc, mode: str) -> list[str]:
    e = _d(_d(v1, "cluster"), "etcd")
    if not e or machine_type(v1) not in _CONTROL:
        return []
    out = []
    advertised = [str(s) for s in e.get("advertisedSubnets") or []]
    if e.get("subnet") and advertised:
        out.append("etcd subnet can't be set when advertised subnets are set")
    for cidr in advertised or ([str(e["subnet"])] if e.get("subnet") else []):
        if not go.subnet_or_address_ok(cidr.removeprefix("!")):
            out.append(f"etcd advertised subnet is not valid: {go._goq(cidr.removeprefix('!'))}")
    for cidr in (str(s) for s in e.get("listenSubnets") or advertised):  # ListenSubnets()
        if not go.subnet_or_address_ok(cidr.removeprefix("!")):
            out.append(f"etcd listen subnet is not valid: {go._goq(cidr.removeprefix('!'))}")
    return out


@rule(V, "EtcdConfig.Validate (CA)", "v1alpha1", secrets=True)
def etcd_ca(v1: Doc, mode: str) -> list[str]:
    e = _d(_d(v1, "cluster"), "etcd")
    if not e or machine_type(v1) not in _CONTROL or e.get("ca") is not None:
        return []
    return ["key/cert combination should not be empty"]


@rule(V, "Config.Validate (install)", "v1alpha1")
def install(v1: Doc, mode: str) -> list[str]:
    if mode != "metal":  # runtime Mode.RequiresInstall
        return []
    inst = _d(v1, "machine").get("install")
    if not isinstance(inst, dict):
        return [f'install instructions are required in "{mode}" mode']
    out = []
    if not inst.get("disk") and not inst.get("diskSelector"):
        out.append("either install disk or diskSelector should be defined")
    if inst.get("extraKernelArgs") and go.go_bool(inst.get("grubUseUKICmdline")):
        out.append("install.extraKernelArgs and install.grubUseUKICmdline can't be used together")
    return out


@rule(V, "Config.Validate (features.hostDNS)", "v1alpha1")
def host_dns(v1: Doc, mode: str) -> list[str]:
    h = _d(_d(_d(v1, "machine"), "features"), "hostDNS")
    enabled, forward = go.go_bool(h.get("enabled")), go.go_bool(h.get("forwardKubeDNSToHost"))
    out = []
    if mode == "container" and not enabled:
        out.append(
            "feature HostDNS should be enabled in container mode (.machine.features.hostDNS.enabled)"
        )
    if mode == "container" and not forward:
        out.append(
            "feature HostDNS should forward kube-dns to host in container mode "
            "(.machine.features.hostDNS.forwardKubeDNSToHost)"
        )
    if forward and not enabled:
        out.append(
            "feature hostDNS.forwardKubeDNSToHost requires hostDNS.enabled to be true "
            "(.machine.features.hostDNS)"
        )
    return out


@rule(V, "Config.Validate (machine.ca, cluster.ca)", "v1alpha1", secrets=True)
def certificate_authorities(v1: Doc, mode: str) -> list[str]:
    m = _d(v1, "machine")
    ca, accepted = m.get("ca"), m.get("acceptedCAs") or []
    ca = ca if isinstance(ca, dict) else None
    out = []
    if ca is None and not accepted:
        out.append(
            "issuing CA or some accepted CAs are required (.machine.ca, machine.acceptedCAs)"
        )
    kind = machine_type(v1)
    if kind in _CONTROL:
        if ca is None:
            out.append("issuing CA is required (.machine.ca)")
        elif not ca.get("key"):
            out.append("issuing CA key is required for controlplane nodes (.machine.ca.key)")
    elif kind == "worker":
        if ca is not None and ca.get("key"):
            out.append(
                "issuing Talos API CA key is not allowed on non-controlplane nodes (.machine.ca)"
            )
        if ca is not None and not ca.get("crt") and not accepted:
            out.append(
                "trusted CA certificates are required on non-controlplane nodes "
                "(.machine.ca.crt, .machine.acceptedCAs)"
            )
        if _d(_d(v1, "cluster"), "ca").get("key"):
            out.append(
                "issuing Kubernetes API CA key is not allowed on non-controlplane nodes "
                "(.cluster.ca)"
            )
    return out


@rule(V, "Config.Validate (machine type), ValidateCNI", "v1alpha1")
def type_and_cni(v1: Doc, mode: str) -> list[str]:
    kind = machine_type(v1)
    if kind == "unknown":
        return [f"unknown machine type {go._goq(_d(v1, 'machine').get('type', ''))}"]
    if kind not in _CONTROL:
        return []
    net = _d(_d(v1, "cluster"), "network")
    if not isinstance(net.get("cni"), dict):
        return []  # ClusterConfig.CNI(): flannel when unset
    cni = net["cni"]
    name, urls, flannel = str(cni.get("name") or ""), cni.get("urls") or [], _d(cni, "flannel")
    out = []
    if name not in ("flannel", "custom", "none"):
        return ['cni name should be one of ["flannel", "custom", "none"]']
    if name in ("flannel", "none") and urls:
        out.append(f'"urls" field should be empty for "{name}" CNI')
    if name in ("custom", "none"):
        if flannel.get("extraArgs"):
            out.append(f'"flanneldExtraArgs" field should be empty for "{name}" CNI')
        if go.go_bool(flannel.get("kubeNetworkPoliciesEnabled")):
            out.append(
                f'"flannelKubeNetworkPoliciesEnabled" should not be enabled for "{name}" CNI'
            )
    if name == "custom":
        out += [e for u in urls if (e := go.endpoint_uri_error(str(u)))]
    return out


@rule(V, "Config.Validate (legacy interface vip on a worker)", "v1alpha1")
def worker_vip(v1: Doc, mode: str) -> list[str]:
    if machine_type(v1) != "worker":
        return []
    out = []
    for dev in _d(_d(v1, "machine"), "network").get("interfaces") or []:
        dev = dev if isinstance(dev, dict) else {}
        for owner in [dev, *[v for v in dev.get("vlans") or [] if isinstance(v, dict)]]:
            if isinstance(owner.get("vip"), dict):
                out.append("virtual (shared) IP is not allowed on non-controlplane nodes")
    return out


@rule(V, "KubeletConfig.Validate", "v1alpha1")
def kubelet(v1: Doc, mode: str) -> list[str]:
    k = _d(_d(v1, "machine"), "kubelet")
    out = []
    for cidr in _d(k, "nodeIP").get("validSubnets") or []:
        cidr = str(cidr).removeprefix("!")
        if not go.subnet_or_address_ok(cidr):
            out.append(f"kubelet nodeIP subnet is not valid: {go._goq(cidr)}")
    extra = _d(k, "extraConfig")
    out += [
        f"kubelet configuration field {go._goq(f)} can't be overridden"
        for f in _KUBELET_PROTECTED
        if f in extra
    ]
    return out


@rule(V, "Config.Validate (labels.Validate, labels.ValidateTaints)", "v1alpha1")
def node_labels_and_taints(v1: Doc, mode: str) -> list[str]:
    m = _d(v1, "machine")
    out = []
    labels = _d(m, "nodeLabels")
    errs = [
        e
        for k in sorted(labels)
        for e in (go.qualified_name_error(str(k)), go.label_value_error(str(labels[k] or "")))
        if e
    ]
    if errs:
        out.append(f"invalid machine node labels: {_multierror(errs)}")
    taints = _d(m, "nodeTaints")
    errs = []
    for k in sorted(taints):
        if e := go.qualified_name_error(str(k)):
            errs.append(e)
            continue
        val, found, effect = str(taints[k] or "").partition(":")
        effect = effect if found else val
        if effect not in _TAINT_EFFECTS:
            errs.append(f"invalid taint effect: {go._goq(effect)}")
        elif found and (e := go.label_value_error(val)):
            errs.append(e)
    if errs:
        out.append(f"invalid machine node taints: {_multierror(errs)}")
    return out


@rule(V, "Config.Validate (kubernetesTalosAPIAccess, persist)", "v1alpha1")
def api_access_and_persist(v1: Doc, mode: str) -> list[str]:
    access = _d(_d(_d(v1, "machine"), "features"), "kubernetesTalosAPIAccess")
    out = []
    if go.go_bool(access.get("enabled")) and machine_type(v1) not in _CONTROL:
        out.append(
            "feature Kubernetes Talos API Access can only be enabled on control plane machines"
        )
    if v1.get("persist") is False:
        out.append(".persist should be enabled")
    return out


def _multierror(errs: list[str]) -> str:
    """hashicorp/go-multierror's text, as Talos nests it."""
    head = "1 error occurred" if len(errs) == 1 else f"{len(errs)} errors occurred"
    return head + ":" + "".join(f"\n\t* {e}" for e in errs) + "\n\n"
