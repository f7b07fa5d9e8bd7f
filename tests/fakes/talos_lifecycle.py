"""Opt-in per-node lifecycle of the talosctl stand-in: absent -> maintenance -> configured.

State keys (see fakecli.py; a node not listed in `nodes` behaves as before this module):
    nodes: {ip: "absent" | "maintenance" | "configured"}
    reboot_calls: N          after `apply-config --insecure`, the next N calls that reach the node
                             fail as a rebooting node does (connection refused), then it answers
    rebooting: {ip: N}       (kept by the stand-in) calls left before a node is back
    bootstrap_count: N       (kept by the stand-in) successful `bootstrap` calls
    healthy_after_calls: N   `health` fails the first N calls even when everything is up
    health_calls: N          (kept by the stand-in)

Messages, from upstream (read, not copied):
- Nothing listening: grpc-go v1.82.1 (what talos v1.13.9's go.mod pins):
  internal/transport/http2_client.go dial() wraps the dialer error as "transport: Error while
  dialing: %v"; transport.go ConnectionError.Error() is `connection error: desc = %q`;
  balancer/pickfirst/pickfirst.go hands that error to the picker and picker_wrapper.go pick()
  returns status.Error(codes.Unavailable, err.Error()). Seen verbatim in siderolabs/talos
  issues #10880 (apply-config --insecure) and #10697 (bootstrap).
- talosctl's wrapping (cmd/talosctl/cmd/talos at v1.13.9): bootstrap.go "error executing
  bootstrap: %w", apply-config.go "error applying new configuration: %s", version.go "error
  getting version: %s", etcd.go etcdMemberListCmd "error getting members: %w", kubeconfig.go
  "error copying: %w"; health.go healthOnServer returns the stream error as is.
- A maintenance node serves a certificate of its own maintenance root
  (internal/app/machined/pkg/controllers/secrets/maintenance_root.go), so a client holding the
  talosconfig CA fails the handshake with x509 "certificate signed by unknown authority"; with
  --insecure it answers with the Reader role in read-only mode
  (internal/app/machined/pkg/controllers/runtime/api_service_config.go: ReadonlyRoleMode,
  SkipVerifyingClientCert); the v1.13 contract allows --insecure only where that works
  (version, get, apply-config, upgrade, reset). Control-plane-only APIs on a worker fail
  internal/app/internal/machinehelper/machinehelper.go CheckControlplane: "%s is only available
  on control plane nodes" (Unimplemented).
- A configured node demands a client certificate (SkipVerifyingClientCert false): --insecure
  fails with crypto/tls's "remote error: tls: certificate required" (talos_resources.py).
- v1alpha1_server.go Kubeconfig generates the admin kubeconfig from the machine config: it works
  on a configured control plane before bootstrap (no etcd needed), so the stand-in lets it.
"""

from __future__ import annotations

import yaml
from fakecli import Call, Fail
from talos_resources import CERT_REQUIRED, UNKNOWN_AUTHORITY

STAGES = ("absent", "maintenance", "configured")
APID_PORT = 50000
PREFIX = {  # talosctl's wrapping of the RPC error, per command (v1.13.9)
    "bootstrap": "error executing bootstrap: ",
    "apply-config": "error applying new configuration: ",
    "version": "error getting version: ",
    "etcd members": "error getting members: ",
    "kubeconfig": "error copying: ",
}


def refused(ip: str) -> str:
    return (
        'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while '
        f'dialing: dial tcp {ip}:{APID_PORT}: connect: connection refused"'
    )


def stage(call: Call, ip: str) -> str | None:
    """The node's stage; None = not modelled (legacy behaviour). The legacy `maintenance` map
    still marks a node as in maintenance when `nodes` does not name it."""
    nodes = call.state.get("nodes") or {}
    if ip in nodes:
        value = str(nodes[ip])
        if value not in STAGES:
            raise ValueError(f"state nodes[{ip!r}] = {value!r}: must be one of {STAGES}")
        return value
    if ip in (call.state.get("maintenance") or {}):
        return "maintenance"
    return None


def _down(call: Call, ip: str) -> bool:
    """Absent, or rebooting (each call that reaches a rebooting node uses one of its calls)."""
    if stage(call, ip) == "absent":
        return True
    left = dict(call.state.get("rebooting") or {})
    if int(left.get(ip, 0)) > 0:
        left[ip] = int(left[ip]) - 1
        call.set("rebooting", {k: v for k, v in left.items() if v > 0})
        return True
    return False


def _fail(call: Call, msg: str) -> Fail:
    return Fail(PREFIX.get(call.path, "") + msg)


def _node_errors(call: Call, errors: list[tuple[str, str]]) -> Fail:
    """apid's one-to-many proxy: per-node errors gathered by go-multierror."""
    lines = "\n".join(f"\t* {n}: {m}" for n, m in errors)
    n = len(errors)
    return _fail(call, f"{n} error{'s' if n > 1 else ''} occurred:\n{lines}")


def gate(call: Call, nodes: list[str], endpoints: list[str]) -> None:
    """Refuse an online call as the modelled nodes would; legacy nodes pass untouched."""
    if call.bool("--insecure"):
        # WithClientMaintenance dials the nodes themselves, no talosconfig
        for n in nodes:
            st = stage(call, n)
            if st is None:
                continue
            if _down(call, n):
                raise _fail(call, refused(n))
            if st == "configured":
                raise _fail(call, CERT_REQUIRED)
        return
    # with the talosconfig: the client reaches the first endpoint that answers (round_robin
    # over READY connections), whose apid proxies to every node named
    live = [e for e in endpoints if not _down(call, e)]
    if not live:
        raise _fail(call, refused(endpoints[0]))
    if stage(call, live[0]) == "maintenance":
        raise _fail(call, UNKNOWN_AUTHORITY)
    errors: list[tuple[str, str]] = []
    for n in nodes:
        if n == live[0]:
            continue
        st = stage(call, n)
        if st is None:
            continue
        if _down(call, n):
            errors.append((n, refused(n)))
        elif st == "maintenance":  # apid's backend checks the node against the cluster CA
            errors.append((n, UNKNOWN_AUTHORITY))
    if errors:
        raise _node_errors(call, errors)


def machine_type(call: Call, ip: str) -> str | None:
    """controlplane/worker from the config the node was given (state `applied`), if any."""
    text = ((call.state.get("applied") or {}).get(ip) or {}).get("config")
    if not text:
        return None
    for doc in yaml.safe_load_all(text):
        if isinstance(doc, dict) and isinstance(doc.get("machine"), dict):
            return str(doc["machine"].get("type") or "") or None
    return None


def require_controlplane(call: Call, nodes: list[str], api: str) -> None:
    """CheckControlplane for modelled nodes whose applied config says worker."""
    bad = [n for n in nodes if stage(call, n) and machine_type(call, n) == "worker"]
    if bad:
        raise _fail(
            call,
            f"rpc error: code = Unimplemented desc = {api} is only available on control plane nodes",
        )


def after_apply(call: Call, nodes: list[str]) -> None:
    """`apply-config --insecure` on a maintenance node: it installs and reboots into configured."""
    if not call.bool("--insecure"):
        return
    table = dict(call.state.get("nodes") or {})
    moved = [n for n in nodes if stage(call, n) == "maintenance"]
    if not moved:
        return
    for n in moved:
        table[n] = "configured"
    call.set("nodes", table)
    wait = int(call.state.get("reboot_calls") or 0)
    if wait:
        call.set("rebooting", {**(call.state.get("rebooting") or {}), **dict.fromkeys(moved, wait)})


def count_bootstrap(call: Call) -> None:
    call.set("bootstrap_count", int(call.state.get("bootstrap_count") or 0) + 1)


def health_problem(call: Call, allnodes: list[str]) -> str | None:
    """Why `health` fails in the lifecycle, or None. Only applies when `nodes` is set."""
    if "nodes" not in call.state and "healthy_after_calls" not in call.state:
        return None
    calls = int(call.state.get("health_calls") or 0) + 1
    call.set("health_calls", calls)
    if not call.state.get("bootstrapped"):
        return "waiting for etcd to be healthy: etcd is not bootstrapped"
    pending = [n for n in allnodes if stage(call, n) not in (None, "configured")]
    pending += [n for n in allnodes if int((call.state.get("rebooting") or {}).get(n, 0)) > 0]
    if pending:
        return f"waiting for all nodes to finish boot sequence: nodes not up: {', '.join(pending)}"
    if calls <= int(call.state.get("healthy_after_calls") or 0):
        return "waiting for all k8s nodes to report ready: some nodes are not ready"
    return None
