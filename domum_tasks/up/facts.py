"""Read-only probes of `up`: what exists already. Every probe turns a failure into an answer
(absent, not installed, unknown), never an exception, so a phase can plan as for a fresh target
and say which assumption it made.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DomumError

if TYPE_CHECKING:
    from ..inventory.model import Inventory

PROBE_TIMEOUT_S = 20.0
# crypto/tls's alert text when a server demands a client certificate the client did not send
# (golang/go src/crypto/tls/alert.go alertCertificateRequired: "certificate required"),
# which a configured Talos node's apid answers to --insecure.
CERT_REQUIRED = "tls: certificate required"
State = str  # "configured" | "maintenance" | "absent" (Talos); "reachable" | "absent" (raspios)


@dataclass(frozen=True)
class NodeState:
    node_id: int
    hostname: str
    state: State
    detail: str = ""


def _run(argv: Sequence[str], timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str, str]:
    """(ok, stdout, the reason's last line), as every talos probe reads a command."""
    from ..run import run_cmd
    from ..talos.ops.facts import run_probe

    return run_probe(lambda a: run_cmd(a, timeout_s=timeout_s, check=False), argv)


def repo_file(rel: str) -> Path:
    from ..ssh import repo_path

    return repo_path(rel)


def talos_state(inv: Inventory, node_id: int) -> NodeState:
    """configured: answers with the cluster's client certificate (talosconfig); maintenance:
    answers only `--insecure` (booted, no config yet); absent: neither."""
    from ..talos.argv import talosctl
    from ..talos.discover.facts import probe_argv

    node = inv.nodes[node_id]
    ip = str(node.ip)
    why = ""
    if repo_file(inv.cluster.talosconfig).is_file():
        ok, _, why = _run(talosctl(inv, "version", "--short", nodes=[ip], endpoints=[ip]))
        if ok:
            return NodeState(node_id, node.hostname, "configured")
    ok, _, err = _run(probe_argv(inv, "disks", ip))
    if ok:
        return NodeState(node_id, node.hostname, "maintenance")
    if CERT_REQUIRED in err:
        # It answers, demanding a client certificate: it has a machine config (apid's
        # SkipVerifyingClientCert is false once configured), only not this talosconfig's.
        # Never "absent": that would tell the user to re-flash a running node.
        return NodeState(node_id, node.hostname, "configured", why or "no talosconfig here")
    return NodeState(node_id, node.hostname, "absent", why or err)


def raspios_state(inv: Inventory, node_id: int) -> NodeState:
    """reachable over strict SSH (a known host key), else absent with the reason."""
    from .. import ssh

    node = inv.nodes[node_id]
    result = ssh.run_on(inv, ssh.resolve(inv, node_id), "true", inv.ssh.connect_timeout_s + 5)
    if result.ok:
        return NodeState(node_id, node.hostname, "reachable")
    from ..pi.fleet.facts import down_reason

    state = "unenrolled" if result.status in ("unknown-key", "changed-key") else "absent"
    return NodeState(node_id, node.hostname, state, down_reason(result, node_id))


def node_states(inv: Inventory, node_ids: Sequence[int]) -> dict[int, NodeState]:
    """Every node asked at once (one unreachable node costs one timeout, not the sum)."""
    from .. import ssh

    def one(i: int) -> NodeState:
        return talos_state(inv, i) if inv.nodes[i].os == "talos" else raspios_state(inv, i)

    ids = sorted(node_ids)
    jobs = [lambda i=i: one(i) for i in ids]
    return dict(zip(ids, ssh.parallel(jobs, max(1, inv.ssh.parallel)), strict=True))


def node_answers(inv: Inventory, node_id: int) -> NodeState:
    """A Wait probe: raises until the node answers (configured or in maintenance mode; a
    Raspberry Pi OS Pi once it is enrolled: until then its host key is not trusted, and the
    person `up --wait` waits for runs `domum pi.enroll` meanwhile)."""
    found = node_states(inv, [node_id])[node_id]
    if found.state == "absent":
        raise DomumError(f"{found.hostname} does not answer yet ({found.detail})")
    if found.state == "unenrolled":
        raise DomumError(
            f"{found.hostname} answers but is not enrolled ({found.detail}): "
            f"run `domum pi.enroll --node {node_id}`"
        )
    return found


def etcd_members(inv: Inventory) -> tuple[list[str] | None, str]:
    from ..talos.ops.facts import probe_etcd_members_any

    if not repo_file(inv.cluster.talosconfig).is_file():
        return None, f"no talosconfig at {inv.cluster.talosconfig} yet"
    return probe_etcd_members_any(inv)


@dataclass(frozen=True)
class FluxRow:
    kind: str
    namespace: str
    name: str
    ready: str
    message: str

    @property
    def ok(self) -> bool:
        return self.ready == "True"


def flux_rows(inv: Inventory) -> tuple[list[FluxRow] | None, str]:
    """Every Kustomization and HelmRelease with READY and MESSAGE, or (None, why)."""
    from ..flux.facts import parse_table
    from ..flux.plan import status_argvs

    if not repo_file(inv.cluster.kubeconfig).is_file():
        return None, f"no kubeconfig at {inv.cluster.kubeconfig} yet"
    rows: list[FluxRow] = []
    for kind, argv in zip(("Kustomization", "HelmRelease"), status_argvs(inv), strict=True):
        ok, out, err = _run(argv, 60)
        if not ok:
            return None, err
        for r in parse_table(out):
            rows.append(
                FluxRow(
                    kind,
                    r.get("namespace", ""),
                    r.get("name", ""),
                    r.get("ready", ""),
                    r.get("message", ""),
                )
            )
    return rows, ""


def sops_age_secret(inv: Inventory) -> bool | None:
    """Whether the cluster holds the `sops-age` Secret kustomize-controller decrypts with; None:
    could not tell (kubectl's NotFound is the only "no": kubectl/pkg/cmd/util/helpers.go
    prints "Error from server (NotFound): ...")."""
    from ..flux.sops_age import SECRET_NAME
    from ..talos.argv import FLUX_NAMESPACE
    from ..tools import find_tool

    kubectl = find_tool("kubectl")
    kubeconfig = repo_file(inv.cluster.kubeconfig)
    if kubectl is None or not kubeconfig.is_file():
        return None
    argv = [str(kubectl), "get", "secret", SECRET_NAME, "--namespace", FLUX_NAMESPACE]
    ok, _, err = _run([*argv, "--kubeconfig", str(kubeconfig), "-o", "name"])
    if ok:
        return True
    return False if "(NotFound)" in err else None


def flux_installed(rows: Sequence[FluxRow] | None) -> bool:
    """Bootstrapped: the flux-system Kustomization exists (flux bootstrap creates it)."""
    return any(
        r.kind == "Kustomization" and r.namespace == "flux-system" and r.name == "flux-system"
        for r in rows or ()
    )


def schematics_recorded(inv: Inventory) -> tuple[list[int], list[int]]:
    """(recorded, not recorded) Talos node ids: a schematic id the lock file or the inventory
    holds was registered with the factory before."""
    from ..talos.ops import schematics

    ids = list(inv.talos_nodes)
    resolved = schematics.resolve(inv, ids, offline=False)
    known = set(schematics.recorded_ids(inv, resolved))
    done = [i for i in ids if resolved[i].id in known]
    return done, [i for i in ids if i not in done]


def complete_snapshot(inv: Inventory, job: Any) -> tuple[bool, str]:
    """Whether every target of `job` holds a complete snapshot of it (restic, read-only)."""
    from ..backup.repository import listing

    try:
        rows = listing.rows(inv, [job])
    except DomumError as exc:
        return False, str(exc).splitlines()[0]
    missing = [r["target"] for r in rows if not r.get("newest")]
    if missing:
        errors = [r.get("error", "") for r in rows if r.get("error")]
        return False, f"no complete snapshot on {', '.join(missing)}" + (
            f" ({errors[0]})" if errors else ""
        )
    return True, "a complete snapshot exists on every target"


def same_file(path: str, data: bytes) -> bool:
    try:
        return Path(path).read_bytes() == data
    except OSError:
        return False


_HOST = re.compile(r"\b([a-z0-9][a-z0-9-]*)\.\$\{DOMAIN\}")


def app_hosts(root: Path) -> list[str]:
    """`<app>` of every `<app>.${DOMAIN}` in the GitOps tree (ingress routes, certificates)."""
    names: set[str] = set()
    base = root / "cluster"
    for path in sorted(base.rglob("*.yaml")) if base.is_dir() else []:
        try:
            names.update(_HOST.findall(path.read_text(errors="replace")))
        except OSError:
            continue
    return sorted(names)
