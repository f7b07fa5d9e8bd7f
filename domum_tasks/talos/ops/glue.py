"""Glue between the talos ops tasks and the executor: gathering facts, Local-step handlers and
failure reports. Imported lazily by the task modules.
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
from ...run import LocalHandler
from . import etcd, facts


def probe_nodes(inv: Inventory, node_ids: Iterable[int]) -> dict[int, facts.NodeFacts]:
    """Probe several nodes in parallel (capped like SSH fan-out); read-only."""
    ids = list(node_ids)
    if not ids:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(ids), inv.ssh.parallel)) as pool:
        return dict(zip(ids, pool.map(lambda i: facts.probe_node(inv, i), ids), strict=True))


def config_diff_notes(inv: Inventory, node_ids: Iterable[int], mode: str) -> list[str]:
    """What each running node itself says `apply-config` would change (read-only: talosctl's
    own `apply-config --dry-run`), as plan notes."""
    from .plan import config_path

    out = []
    for i in node_ids:
        node = inv.nodes[i]
        ok, text = facts.probe_config_diff(inv, i, config_path(inv, node), mode)
        head = f"--- talosctl apply-config --dry-run on {node.hostname} ({node.ip})"
        if ok:
            out.append(f"{head}:\n{text}")
        else:
            out.append(
                f"{head}: no answer ({text}); the plan above assumes the node runs and accepts it"
            )
    return out


def missing_tools(*names: str) -> list[str]:
    """Tools a plan needs that are not installed: the task ends with exit 3 (Planned.tools),
    so the planner neither probes with them nor refuses on what such probes would say."""
    from ...tools import find_tool

    return [n for n in names if find_tool(n) is None]


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
            err = DomumError(
                f"upgrade stopped before any node was touched: {exc.message}", hint=exc.hint
            )
            err.exit_code = exc.exit_code  # e.g. the register step's refusal stays exit 4
            return err
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
    """Every Local action the ops planners emit (upgrades add the schematic steps')."""
    out: dict[str, LocalHandler] = {
        "talos.mkdir": _mkdir,
        "talos.remove": _remove,
        "talos.verify-snapshot": _verify_snapshot,
    }
    out["talos.upgrade-node"] = (progress or Progress()).mark
    return out


def snapshot_target(out: str) -> str:
    """--out as an absolute file path, or ConfigError (exit 2) naming what would be valid."""
    import os

    from ...errors import ConfigError

    if not out:
        raise ConfigError("--out PATH is required: where to write the snapshot")
    # `--out=~/x` reaches us unexpanded (the shell expands ~ only at the start of a word)
    target = Path(os.path.abspath(os.path.expanduser(out)))
    if target.is_dir():
        raise ConfigError(
            f"--out {out}: is a directory; give the snapshot's file name, "
            f"e.g. --out {os.path.join(out, 'etcd.snapshot')}"
        )
    parent = next((p for p in target.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"--out {out}: {parent} is a file, not a directory")
    return str(target)


def parse_node(node: str | int | None, inv: Inventory) -> int | None:
    if node in (None, ""):
        return None
    if not str(node).isdigit():
        inv.node(str(node))  # raises the one `--node` message every task gives
    return int(str(node))
