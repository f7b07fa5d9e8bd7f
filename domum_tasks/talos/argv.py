"""Command-line builders for talosctl and flux: the only place their argv shapes are decided.

Rules these builders enforce (they bite otherwise; the tests hold every argv to the talosctl contract):

* every online talosctl call carries `--talosconfig <inventory cluster.talosconfig>` and explicit
  `--nodes` and `--endpoints`, so the talosconfig's default node list is never used (a bare
  `talosctl apply-config -f worker.yaml` once turned every node of a cluster into a worker);
* flags go AFTER the subcommand words: `talosctl --insecure apply-config` makes cobra read
  `apply-config` as the value of `--insecure`'s neighbour and fails;
* offline commands (`gen`, `validate`, `machineconfig`) reject the client flags:
  use `talosctl_offline`;
* flux calls carry `--kubeconfig <inventory cluster.kubeconfig>` and `--namespace`.

Endpoints default to the control-plane IPs (never the VIP: the VIP needs a healthy etcd, and
talosctl fails over between several endpoints on its own).

    >>> talosctl(inv, "bootstrap", nodes=["10.0.10.90"], endpoints=["10.0.10.90"])
    ('talosctl', 'bootstrap', '--talosconfig', 'clusterconfig/talosconfig',
     '--nodes', '10.0.10.90', '--endpoints', '10.0.10.90')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..inventory.model import Inventory

TALOSCTL = "talosctl"
FLUX = "flux"
FLUX_NAMESPACE = "flux-system"

# Words that start an offline talosctl command: no client flags allowed there.
OFFLINE_COMMANDS = frozenset(
    {"gen", "validate", "machineconfig", "mc", "completion", "cluster", "inject"}
)
_CLIENT_FLAGS = (
    "--talosconfig",
    "--nodes",
    "-n",
    "--endpoints",
    "-e",
    "--context",
    "--cluster",
    "-c",
)


def _words(subcommand: str | Sequence[str]) -> list[str]:
    words = subcommand.split() if isinstance(subcommand, str) else [str(w) for w in subcommand]
    if not words or any(w.startswith("-") for w in words):
        raise ValueError(f"talosctl subcommand must be words, not flags: {subcommand!r}")
    return words


def _addresses(values: Iterable[object], what: str) -> str:
    items = [str(v) for v in values]
    if not items or any(not v or "," in v or v.startswith("-") for v in items):
        raise ValueError(f"talosctl {what}: need one or more addresses, got {items!r}")
    return ",".join(items)


def controlplane_ips(inv: Inventory) -> list[str]:
    """Default endpoints: every control plane's IP, in node-id order."""
    return [str(n.ip) for n in inv.controlplanes.values()]


def talosctl(
    inv: Inventory,
    subcommand: str | Sequence[str],
    *args: object,
    nodes: Iterable[object],
    endpoints: Iterable[object] | None = None,
    talosconfig: str | None = None,
) -> tuple[str, ...]:
    """An online talosctl argv: subcommand words, then the client flags, then `args`.

    `subcommand` is e.g. "apply-config" or "etcd snapshot"; `args` are the command's own flags
    and positionals, already split (e.g. "--mode", "auto"). `nodes` must be non-empty;
    `endpoints` defaults to the control planes.
    """
    words = _words(subcommand)
    if words[0] in OFFLINE_COMMANDS:
        raise ValueError(
            f"talosctl {words[0]} is offline and rejects client flags: use talosctl_offline"
        )
    extra = [str(a) for a in args]
    clash = [a.split("=", 1)[0] for a in extra if a.split("=", 1)[0] in _CLIENT_FLAGS]
    if clash:
        raise ValueError(f"pass {', '.join(clash)} through the builder's keywords, not args")
    eps = controlplane_ips(inv) if endpoints is None else list(endpoints)
    return (
        TALOSCTL,
        *words,
        "--talosconfig",
        talosconfig or inv.cluster.talosconfig,
        "--nodes",
        _addresses(nodes, "--nodes"),
        "--endpoints",
        _addresses(eps, "--endpoints"),
        *extra,
    )


def talosctl_offline(subcommand: str | Sequence[str], *args: object) -> tuple[str, ...]:
    """An offline talosctl argv (gen, validate, machineconfig): never any client flag."""
    words = _words(subcommand)
    if words[0] not in OFFLINE_COMMANDS:
        raise ValueError(f"talosctl {words[0]} talks to nodes: use talosctl() with nodes/endpoints")
    extra = [str(a) for a in args]
    if any(a.split("=", 1)[0] in _CLIENT_FLAGS for a in extra):
        raise ValueError(
            f"talosctl {' '.join(words)} rejects client flags (--talosconfig/--nodes/...)"
        )
    return (TALOSCTL, *words, *extra)


def flux(
    inv: Inventory,
    *args: object,
    namespace: str = FLUX_NAMESPACE,
    kubeconfig: str | None = None,
) -> tuple[str, ...]:
    """A flux argv with explicit `--kubeconfig` and `--namespace`, e.g.
    `flux(inv, "suspend", "kustomization", "--all")`."""
    words = [str(a) for a in args]
    if not words or words[0].startswith("-"):
        raise ValueError(f"flux: the command comes first, got {words!r}")
    return (
        FLUX,
        *words,
        "--kubeconfig",
        kubeconfig or inv.cluster.kubeconfig,
        "--namespace",
        namespace,
    )
