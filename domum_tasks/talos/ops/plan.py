"""Pure planners of the Talos day-2 tasks: inventory + probed facts in, Plan out (no I/O).

Ordering rules (rolling work): control planes first, then workers, ascending node id; one node
at a time, so two control planes are never down together. Control planes go first because the
Kubernetes skew policy wants the control plane at least as new as the kubelets, and an upgrade
that breaks a control plane should stop before any worker has been touched.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from ...errors import ConfigError
from ...plan import Cmd, Local, Plan, Wait
from ..argv import controlplane_ips, flux, talosctl
from ..genconfig.plan import machine_config_path

if TYPE_CHECKING:
    from ...inventory.model import Inventory, Node
    from .facts import Kustomization, NodeFacts

# talosctl v1.13 apply-config --mode (cmd/talosctl/cmd/talos/apply-config.go); `reboot` is new in 1.13
APPLY_MODES = ("auto", "no-reboot", "reboot", "staged", "try")
ALREADY_BOOTSTRAPPED = "AlreadyExists"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str, arg: str = "--wait-timeout") -> float:
    """'10m', '90s', '1h30m' -> seconds (the subset of Go durations talosctl users type)."""
    m = _DURATION.match(text.strip())
    if not text.strip() or not m or not any(m.groups()):
        raise ConfigError(f"{arg} {text!r}: not a duration; use e.g. 10m, 90s or 1h30m")
    h, mi, s = (int(g or 0) for g in m.groups())
    seconds = h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise ConfigError(f"{arg} {text!r}: must be longer than 0s")
    return float(seconds)


def talos_node(inv: Inventory, node_id: int | str) -> Node:
    node = inv.node(node_id)
    if node.os != "talos":
        valid = ", ".join(str(i) for i in inv.talos_nodes)
        raise ConfigError(
            f"--node {node_id}: {node.hostname} runs {node.os}, not Talos; Talos nodes: {valid}"
        )
    return node


def rolling_order(inv: Inventory, only: Iterable[int] | None = None) -> list[int]:
    """Talos node ids, control planes first, then workers; each group by id."""
    wanted = set(only) if only is not None else set(inv.talos_nodes)
    cps = [i for i in inv.controlplanes if i in wanted]
    workers = [i for i, n in inv.talos_nodes.items() if n.role != "controlplane" and i in wanted]
    return cps + workers


def first_controlplane(inv: Inventory) -> tuple[int, Node]:
    if not inv.controlplanes:
        raise ConfigError("inventory has no control-plane node (nodes.*.role: controlplane)")
    return next(iter(inv.controlplanes.items()))


def config_path(inv: Inventory, node: Node) -> str:
    """The machine config genconfig wrote for `node` (clusterconfig/<cluster>-<hostname>.yaml)."""
    return machine_config_path(inv, node)


def _label(node_id: int, node: Node) -> str:
    return f"{node.hostname} (node {node_id}, {node.ip}, {node.role}, {node.platform})"


# --- apply / bootstrap / kubeconfig / health ------------------------------------------------------


def plan_apply(
    inv: Inventory,
    node_ids: Iterable[int],
    *,
    insecure: bool = False,
    mode: str = "auto",
    existing: Iterable[str] = (),
    at: str = "",
) -> Plan:
    """`apply-config --file clusterconfig/<cluster>-<host>.yaml` per node, in rolling order.

    With --insecure (maintenance mode, no client certificate yet) the node is its own endpoint.
    A node in maintenance mode has the address DHCP gave it, which is the inventory IP only with
    a DHCP reservation for its MAC; `at` names the address it has now (one node, --insecure).
    """
    if mode not in APPLY_MODES:
        raise ConfigError(f"--mode {mode!r}: valid modes are {', '.join(APPLY_MODES)}")
    ids = rolling_order(inv, [int(i) for i in node_ids if talos_node(inv, i)])
    if at:
        _check_at(at, insecure, ids)
    plan = Plan(f"apply machine configs ({mode}{', insecure' if insecure else ''})")
    have = set(existing)
    for i in ids:
        node = inv.nodes[i]
        path = config_path(inv, node)
        if path not in have:
            plan.note(f"{path} does not exist yet: run `inv talos.genconfig` first")
        args: list[str] = ["--file", path, "--mode", mode]
        if insecure:
            args.insert(0, "--insecure")
        target = at or str(node.ip)
        eps = [target] if insecure else None
        argv = talosctl(inv, "apply-config", *args, nodes=[target], endpoints=eps)
        where = f" at its maintenance address {at}" if at else ""
        plan.add(Cmd(argv, desc=f"apply {path} to {_label(i, node)}{where}", timeout_s=300))
        if at:
            plan.note(
                f"{node.hostname} takes its inventory address {node.ip} once the config is "
                f"applied; later calls use {node.ip}"
            )
    return plan


def _check_at(at: str, insecure: bool, ids: list[int]) -> None:
    import ipaddress

    if not insecure:
        raise ConfigError(
            f"--at {at}: only with --insecure (a configured node answers on its inventory address)"
        )
    if len(ids) != 1:
        raise ConfigError(f"--at {at}: names one node's address; give --node N, not --all")
    try:
        ipaddress.ip_address(at)
    except ValueError:
        raise ConfigError(
            f"--at {at!r}: not an IP address (e.g. the DHCP lease, 10.0.10.153)"
        ) from None


def plan_bootstrap(
    inv: Inventory, members: list[str] | None, probe_error: str = "", deadline_s: float = 600
) -> Plan:
    """Bootstrap etcd on the first control plane, retrying until the deadline; a no-op when
    etcd already has members."""
    cp_id, cp = first_controlplane(inv)
    plan = Plan(f"bootstrap etcd on {cp.hostname}")
    if members:
        return plan.note(f"already bootstrapped: etcd members {', '.join(members)}; nothing to do")
    if members is None:
        plan.note(
            f"etcd members not readable ({probe_error or 'no answer'}): assuming not bootstrapped"
        )
    ip = str(cp.ip)
    boot = Cmd(
        talosctl(inv, "bootstrap", nodes=[ip], endpoints=[ip]),
        desc=f"bootstrap etcd on {_label(cp_id, cp)}",
        timeout_s=60,
        ok_stderr=(ALREADY_BOOTSTRAPPED,),
    )
    members_cmd = Cmd(talosctl(inv, "etcd members", nodes=[ip], endpoints=[ip]), timeout_s=30)
    plan.add(
        Wait(
            f"{cp.hostname} to accept the bootstrap",
            deadline_s,
            probe=boot,
            interval_s=10,
            desc="retrying: " + shlex.join(boot.argv),
        ),
        Wait(
            f"etcd on {cp.hostname} to list its members",
            deadline_s,
            probe=members_cmd,
            interval_s=10,
            desc=shlex.join(members_cmd.argv),
        ),
    )
    return plan


def plan_kubeconfig(inv: Inventory, out: str) -> Plan:
    cp_id, cp = first_controlplane(inv)
    plan = Plan(f"fetch the admin kubeconfig into {out}")
    parent = str(PurePosixPath(out).parent)
    plan.add(
        Local("talos.mkdir", {"path": parent}, desc="make sure the directory exists"),
        Cmd(
            talosctl(inv, "kubeconfig", out, "--force", "--merge=false", nodes=[str(cp.ip)]),
            desc=f"from {_label(cp_id, cp)}; overwrites {out}",
            timeout_s=120,
        ),
    )
    return plan


def health_cmd(inv: Inventory, wait_timeout: str, via: Node | None = None, desc: str = "") -> Cmd:
    """`talosctl health` naming every Talos node explicitly, run through one control plane."""
    seconds = parse_duration(wait_timeout)
    cps = controlplane_ips(inv)
    workers = [str(n.ip) for n in inv.talos_nodes.values() if n.role != "controlplane"]
    node = via or first_controlplane(inv)[1]
    args = ["--wait-timeout", wait_timeout, "--control-plane-nodes", ",".join(cps)]
    if workers:
        args += ["--worker-nodes", ",".join(workers)]
    return Cmd(
        talosctl(inv, "health", *args, nodes=[str(node.ip)]),
        desc=desc or f"cluster health via {node.hostname}, waiting up to {wait_timeout}",
        timeout_s=seconds + 60,
    )


def plan_health(inv: Inventory, wait_timeout: str) -> Plan:
    """An unhealthy cluster is the check's outcome (data): the task still shows its table."""
    return Plan("cluster health").add(replace(health_cmd(inv, wait_timeout), check=False))


# --- upgrades ----------------------------------------------------------------------------------------


def needs_upgrade(facts: NodeFacts | None, version: str, schematic_id: str) -> tuple[bool, str]:
    """(upgrade?, why). Unknown state upgrades: an unneeded reboot beats a stale image."""
    if facts is None or not facts.reachable:
        why = facts.error if facts is not None else "not probed"
        return True, f"state unknown ({why}): planned as if out of date"
    if facts.version != version:
        return True, f"runs {facts.version}, wants {version}"
    if facts.schematic is None:
        return True, "booted schematic unreadable: upgrading to be sure"
    if facts.schematic != schematic_id:
        return True, f"booted schematic {facts.schematic[:12]}…, wants {schematic_id[:12]}…"
    return False, f"already at {version} with schematic {schematic_id[:12]}…"


def plan_upgrade(
    inv: Inventory,
    images: Mapping[int, str],
    schematic_ids: Mapping[int, str],
    facts: Mapping[int, NodeFacts],
    *,
    wait_timeout: str = "10m",
    suspend_flux: bool = True,
    force: bool = False,
    kustomizations: Sequence[Kustomization] | None = None,
    flux_error: str = "",
) -> Plan:
    """Rolling Talos upgrade of the nodes in `images` (node id -> installer image).

    The Flux Kustomizations that are not already suspended (`kustomizations`, as probed) are
    suspended first and exactly those are resumed in `finally_steps`, so they are resumed even
    when a node fails its health gate, and ones the operator suspended stay suspended. With
    `kustomizations=None` (not listable: `flux_error`) `--all` is planned and a note says so.
    After each node, `talosctl health` must pass before the next node starts.
    """
    seconds = parse_duration(wait_timeout)
    version = inv.cluster.talos_version
    plan = Plan(f"rolling Talos upgrade to {version}")
    todo: list[int] = []
    for i in rolling_order(inv, images):
        upgrade, why = needs_upgrade(facts.get(i), version, schematic_ids[i])
        plan.note(f"{inv.nodes[i].hostname}: {why}")
        if upgrade or force:
            todo.append(i)
    if not todo:
        return plan.note("every selected node is up to date; nothing to do")
    if suspend_flux:
        _pause_flux(plan, inv, kustomizations, flux_error)
    plan.add(health_cmd(inv, wait_timeout, desc="pre-check: healthy before touching any node"))
    for n, i in enumerate(todo, 1):
        node = inv.nodes[i]
        ip = str(node.ip)
        plan.add(
            Local(
                "talos.upgrade-node",
                {"node": i, "hostname": node.hostname, "index": n, "total": len(todo)},
                desc=f"node {n}/{len(todo)}: {node.hostname}",
            ),
            Cmd(
                talosctl(
                    inv,
                    "upgrade",
                    "--image",
                    images[i],
                    "--wait=true",
                    "--timeout",
                    wait_timeout,
                    nodes=[ip],
                ),
                desc=f"upgrade {node.hostname} (node {i}, {node.role})",
                timeout_s=seconds + 120,
            ),
            health_cmd(
                inv,
                wait_timeout,
                via=_gate_node(inv, i),
                desc=f"gate: cluster healthy after {node.hostname}",
            ),
        )
    return plan


def _pause_flux(
    plan: Plan, inv: Inventory, found: Sequence[Kustomization] | None, error: str
) -> None:
    """Suspend the Kustomizations that reconcile now; resume exactly those at the end.

    Flux reconciling into a half-upgraded cluster can reschedule or re-apply workloads mid-drain.
    A Kustomization suspended before the upgrade was suspended on purpose and stays suspended.
    """
    why = "so it does not reconcile into a half-upgraded cluster"
    if found is None:
        plan.note(
            f"Flux Kustomizations not listed ({error or 'no answer'}): planned `--all`, which "
            "would also resume ones suspended on purpose; a real run lists them first and stops "
            "if it cannot"
        )
        targets: list[tuple[tuple[str, ...], str, str]] = [
            (("--all",), "flux-system", "every Flux Kustomization in flux-system")
        ]
    else:
        kept = [k.ref for k in found if k.suspended]
        if kept:
            plan.note(f"Flux: already suspended, left suspended: {', '.join(kept)}")
        targets = [
            ((k.name,), k.namespace, f"Flux Kustomization {k.ref}")
            for k in found
            if not k.suspended
        ]
        if not targets:
            plan.note(
                "Flux: no Kustomization to suspend ("
                + ("every one is already suspended" if found else "none found")
                + "): no suspend/resume planned"
            )
            return
    for args, ns, ref in targets:
        plan.add(
            Cmd(
                flux(inv, "suspend", "kustomization", *args, namespace=ns),
                desc=f"pause {ref} {why}",
                timeout_s=120,
            )
        )
        plan.finally_steps.append(
            Cmd(
                flux(inv, "resume", "kustomization", *args, namespace=ns),
                desc=f"resume {ref} (also after a failure)",
                timeout_s=300,
            )
        )


def _gate_node(inv: Inventory, upgraded: int) -> Node:
    """Run the health gate through a control plane other than the node just upgraded."""
    others = [n for i, n in inv.controlplanes.items() if i != upgraded]
    return others[0] if others else inv.nodes[upgraded]


def plan_upgrade_k8s(inv: Inventory) -> Plan:
    cp_id, cp = first_controlplane(inv)
    to = inv.cluster.kubernetes_version.removeprefix("v")
    plan = Plan(f"upgrade Kubernetes to {to}")
    plan.note("talosctl upgrade-k8s is idempotent: components already at the version are skipped")
    return plan.add(
        Cmd(
            talosctl(inv, "upgrade-k8s", "--to", to, nodes=[str(cp.ip)]),
            desc=f"via {_label(cp_id, cp)}",
            timeout_s=3600,
        )
    )


# --- etcd snapshot (reset, reboot, shutdown: power.py) ---------------------------------------------------------------------------


def plan_etcd_snapshot(inv: Inventory, out: str, node_id: int | None = None) -> Plan:
    """Snapshot etcd from one control plane into a temp name, verify, then rename to `out`."""
    if node_id is None:
        node_id, node = first_controlplane(inv)
    else:
        node = talos_node(inv, node_id)
        if node.role != "controlplane":
            cps = ", ".join(str(i) for i in inv.controlplanes)
            raise ConfigError(f"--node {node_id}: etcd runs on control planes only ({cps})")
    target = PurePosixPath(out)
    part = str(target.parent / f".{target.name}.unverified")
    plan = Plan(f"etcd snapshot of {node.hostname} into {out}")
    plan.add(
        Local("talos.mkdir", {"path": str(target.parent)}, desc="make sure the directory exists"),
        Cmd(
            talosctl(inv, "etcd snapshot", part, nodes=[str(node.ip)]),
            desc=f"stream the snapshot from {_label(node_id, node)}",
            timeout_s=600,
        ),
        Local(
            "talos.verify-snapshot",
            {"part": part, "out": out},
            desc="size % 512 == 32 and sha256 trailer; only then rename",
        ),
    )
    plan.finally_steps.append(
        Local("talos.remove", {"path": part}, desc="never leave an unverified snapshot behind")
    )
    return plan
