"""Talos nodes (version, stage, ready) and etcd members, through talos/ops/facts.py's parsers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from .model import Probe, Row

if TYPE_CHECKING:
    from ..inventory.model import Inventory

DEFAULT_TIMEOUT_S = 15.0


def _runner(timeout_s: float) -> Any:
    """talos/ops/facts.py's probe runner, with this probe's timeout instead of its 20 s."""
    from ..run import run_cmd

    def run(argv: Sequence[str]) -> Any:
        return run_cmd(argv, timeout_s=timeout_s, check=False)

    return run


def tool_row(part: str, tool: str) -> Row | None:
    """A missing talosctl/flux is one failing row for the part, not one per node."""
    from ..tools import find_tool

    if find_tool(tool) is None:
        return Row(part, tool, False, f"{tool} not found: run `inv tools.install`")
    return None


def node_rows(inv: Inventory, node_id: int, timeout_s: float) -> list[Row]:
    """talos/ops/facts.py's probe_node (version, machinestatus, extensions; read-only)."""
    from ..talos.ops import facts

    node = inv.nodes[node_id]
    name = f"{node.hostname} ({node_id})"
    f = facts.probe_node(inv, node_id, _runner(timeout_s))
    fields: dict[str, Any] = {"node": node_id, "ip": f.ip, "role": node.role}
    if not f.reachable:
        return [Row("talos", name, False, f"down: {f.error}", fields)]
    fields.update(version=f.version, stage=f.stage, ready=f.ready, schematic=f.schematic)
    if f.stage is None:
        return [Row("talos", name, False, f"{f.version}, no machine status", fields)]
    detail = f"{f.version}, {f.stage}, {'ready' if f.ready else 'not ready'}"
    return [Row("talos", name, bool(f.ready) and f.stage == "running", detail, fields)]


def etcd_rows(inv: Inventory, node_id: int, timeout_s: float) -> list[Row]:
    """The members etcd lists when asked through one control plane; fewer members than control
    planes means one is missing from the cluster."""
    from ..talos.ops import facts

    node = inv.nodes[node_id]
    name = f"{node.hostname} ({node_id})"
    members, err = facts.probe_etcd_members(inv, node, _runner(timeout_s))
    if members is None:
        return [Row("etcd", name, False, f"no answer: {err}", {"node": node_id})]
    want = len(inv.controlplanes)
    fields = {"node": node_id, "members": members}
    detail = f"{len(members)} member(s): {', '.join(members) or '-'}"
    if len(members) < want:
        return [Row("etcd", name, False, f"{detail}; {want} control planes expected", fields)]
    return [Row("etcd", name, True, detail, fields)]


def probes(inv: Inventory, timeout_s: float | None) -> list[Probe]:
    t = timeout_s or DEFAULT_TIMEOUT_S
    if not inv.talos_nodes:
        return []
    missing = tool_row("talos", "talosctl")
    if missing is not None:
        return [Probe("talos", "talosctl", t, lambda _t: [missing])]
    out = [
        Probe("talos", f"{inv.nodes[i].hostname} ({i})", t, partial(node_rows, inv, i))
        for i in sorted(inv.talos_nodes)
    ]
    out += [
        Probe("etcd", f"{inv.nodes[i].hostname} ({i})", t, partial(etcd_rows, inv, i))
        for i in sorted(inv.controlplanes)
    ]
    return out
