"""Glue between the talos ops tasks and the executor: gathering facts, Local-step handlers,
schematic-id resolution with the lock file, and failure reports. Imported lazily by ops_tasks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import DomumError
from ...inventory.model import Inventory
from ...run import LocalHandler, write_atomic
from ..schematic import node_image_urls, node_installer_image, schematic_for
from . import etcd, facts


def probe_nodes(inv: Inventory, node_ids: Iterable[int]) -> dict[int, facts.NodeFacts]:
    """Probe several nodes in parallel (capped like SSH fan-out); read-only."""
    ids = list(node_ids)
    if not ids:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(ids), inv.ssh.parallel)) as pool:
        return dict(zip(ids, pool.map(lambda i: facts.probe_node(inv, i), ids), strict=True))


@dataclass
class Resolved:
    node_id: int
    hostname: str
    platform: str
    schematic_yaml: str
    id: str
    source: str
    note: str
    installer: str
    images: dict[str, str]


def resolve_schematics(
    inv: Inventory, node_ids: Iterable[int], *, offline: bool, write_lock: bool
) -> dict[int, Resolved]:
    """Schematic id per node (factory, else inventory, else lock, else computed).

    Each distinct schematic is posted once; new factory answers are written to the lock file.
    """
    path = facts.lock_path()
    lock = facts.read_lock(path)
    before = facts.render_lock(lock)
    cache: dict[str, facts.ResolvedId] = {}
    out: dict[int, Resolved] = {}
    for i in node_ids:
        node = inv.nodes[i]
        sch = schematic_for(inv, node)
        key = facts.schematic_key(sch)
        inv_id = node.schematic.id if node.schematic is not None else None
        if key not in cache or inv_id:
            cache[key] = facts.resolve_schematic_id(
                inv.cluster.image_factory, sch, inventory_id=inv_id, lock=lock, offline=offline
            )
            offline = offline or cache[key].source != "factory"  # one timeout is enough
        res = cache[key]
        out[i] = Resolved(
            i,
            node.hostname,
            node.platform,
            sch.canonical_yaml(),
            res.id,
            res.source,
            res.note,
            node_installer_image(inv, node, res.id),
            node_image_urls(inv, node, res.id),
        )
    after = facts.render_lock(lock)
    if write_lock and after != before:
        write_atomic(path, after.encode())
    return out


def show_config_diffs(inv: Inventory, node_ids: Iterable[int], mode: str) -> None:
    """After a dry-run plan: what each running node itself says `apply-config` would change."""
    from .plan import config_path

    for i in node_ids:
        node = inv.nodes[i]
        ok, text = facts.probe_config_diff(inv, i, config_path(inv, node), mode)
        head = f"--- talosctl apply-config --dry-run on {node.hostname} ({node.ip})"
        if ok:
            print(f"{head}:\n{text}")
        else:
            print(
                f"{head}: no answer ({text}); the plan above assumes the node runs and accepts it"
            )


def existing_files(paths: Iterable[str]) -> set[str]:
    return {p for p in paths if Path(p).is_file()}


@dataclass
class Progress:
    """Records which node a rolling plan is on (fed by `talos.upgrade-node` Local steps)."""

    started: list[dict[str, Any]] = field(default_factory=list)

    def mark(self, args: Mapping[str, Any]) -> None:
        self.started.append(dict(args))
        print(
            f"==> node {args['index']}/{args['total']}: {args['hostname']} (node {args['node']})",
            file=sys.stderr,
        )

    def failure_report(self, exc: DomumError, total: list[int], inv: Inventory) -> DomumError:
        if not self.started:
            return DomumError(f"upgrade stopped before any node was touched: {exc}")
        cur = self.started[-1]
        done = [s["hostname"] for s in self.started[:-1]]
        rest = [inv.nodes[i].hostname for i in total if i not in {s["node"] for s in self.started}]
        return DomumError(
            f"upgrade stopped at {cur['hostname']} (node {cur['node']}, "
            f"{cur['index']}/{cur['total']}); upgraded: {', '.join(done) or 'none'}; "
            f"not touched: {', '.join(rest) or 'none'}\n{exc}",
            hint="fix the node, check `inv talos.health`, then re-run `inv talos.upgrade`: "
            "nodes already at the target are skipped",
        )


def _mkdir(args: Mapping[str, Any]) -> None:
    Path(str(args["path"])).mkdir(parents=True, exist_ok=True)


def _remove(args: Mapping[str, Any]) -> None:
    Path(str(args["path"])).unlink(missing_ok=True)


def _verify_snapshot(args: Mapping[str, Any]) -> etcd.SnapshotInfo:
    info = etcd.finalize_snapshot(str(args["part"]), str(args["out"]))
    print(f"snapshot OK: {args['out']} ({info.size} bytes, sha256 {info.sha256[:16]}…)")
    return info


def handlers(progress: Progress | None = None) -> dict[str, LocalHandler]:
    out: dict[str, LocalHandler] = {
        "talos.mkdir": _mkdir,
        "talos.remove": _remove,
        "talos.verify-snapshot": _verify_snapshot,
    }
    if progress is not None:
        out["talos.upgrade-node"] = progress.mark
    return out


def parse_node(node: str | int | None, inv: Inventory) -> int | None:
    if node in (None, ""):
        return None
    if not str(node).isdigit():
        inv.node(str(node))  # raises the one `--node` message every task gives
    return int(str(node))
