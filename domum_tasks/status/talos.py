"""Talos nodes (version, stage, ready) and etcd members, through talos/ops/facts.py's parsers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from .model import Probe, Row, known

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


def talosconfig_row(inv: Inventory) -> Row | None:
    from ..ssh import repo_path

    path = inv.cluster.talosconfig
    if not repo_path(path).exists():
        return Row(
            "talos", "talosconfig", False, f"no talosconfig at {path}: run `inv talos.genconfig`"
        )
    return None


def _reason(err_lines: list[str], ip: str, fallback: str) -> str:
    """talosctl reports a node that did not answer as `* <ip>: rpc error: ...` (one line per
    node, on stderr), and still prints the others' answers: find this node's line. (Shape as
    a user recorded it: tyriis/home-ops .backstage/systems/talos-flux/docs/manual.md, `WARNING:
    1 error occurred: * 192.168.1.54: rpc error: ...` followed by the other nodes' table.)"""
    mine = [ln.strip(" *\t") for ln in err_lines if ip in ln]
    return mine[-1] if mine else fallback


def nodes_rows(inv: Inventory, timeout_s: float) -> list[Row]:
    """Version, stage and readiness of every Talos node: one `talosctl version` and one `get
    machinestatus` over all nodes at once (talosctl asks each node itself and prints every
    answer it got), parsed by talos/ops/facts.py. Read-only."""
    import json

    from ..talos.argv import talosctl
    from ..talos.ops import facts

    ips = {i: str(n.ip) for i, n in sorted(inv.talos_nodes.items())}
    deadline = time.monotonic() + timeout_s  # two calls share the probe's one timeout
    proc_v = _runner(timeout_s)(talosctl(inv, "version", "--short", nodes=list(ips.values())))
    versions = facts.parse_server_versions(proc_v.stdout or "")
    left = max(0.1, deadline - time.monotonic())
    argv = talosctl(inv, "get", "machinestatus", "-o", "json", nodes=list(ips.values()))
    proc_s = _runner(left)(argv)
    stages: dict[str, tuple[str, bool] | None] = {}
    for obj in facts.json_stream(proc_s.stdout or ""):
        stages[str(obj.get("node", ""))] = facts.parse_machine_status(json.dumps(obj))
    err_v = (proc_v.stderr or "").strip().splitlines()
    err_s = (proc_s.stderr or "").strip().splitlines()
    rows = []
    for i, ip in ips.items():
        node = inv.nodes[i]
        name = f"{node.hostname} ({i})"
        fields: dict[str, Any] = {"node": i, "ip": ip, "role": node.role}
        if ip not in versions:
            why = _reason(err_v, ip, err_v[-1] if err_v else f"exit {proc_v.returncode}")
            rows.append(Row("talos", name, False, f"down: {why}", fields))
            continue
        status = stages.get(ip)
        fields.update(version=versions[ip])
        if status is None:
            why = _reason(err_s, ip, "no machine status")
            rows.append(Row("talos", name, False, f"{versions[ip]}, {why}", fields))
            continue
        stage, ready = status
        fields.update(stage=stage, ready=ready)
        detail = f"{versions[ip]}, {stage}, {'ready' if ready else 'not ready'}"
        rows.append(Row("talos", name, ready and stage == "running", detail, fields))
    return rows


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
    if missing is None:
        missing = talosconfig_row(inv)
    if missing is not None:  # nobody can ask a node: one row per part, not one per node
        rows = [missing] + ([replace(missing, part="etcd")] if inv.controlplanes else [])
        return [Probe(r.part, r.name, t, known(r)) for r in rows]
    out = [Probe("talos", "nodes", t, partial(nodes_rows, inv))]
    out += [
        Probe("etcd", f"{inv.nodes[i].hostname} ({i})", t, partial(etcd_rows, inv, i))
        for i in sorted(inv.controlplanes)
    ]
    return out
