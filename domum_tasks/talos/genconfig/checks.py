"""`inv check` for Talos: render the patches in memory, validate them against the pinned
Talos schema, merge them onto what `talosctl gen config` writes per node and run Talos's own
rules on the result (merged.py), and compare them with the files committed under
cluster/core/01-talos/."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...findings import CheckFinding
from ...inventory.loader import DEFAULT_PATH, Loaded, repo_root
from . import merged, patches
from .generate import read_generated, schema_problems

NAME = "talos"


def check_talos(loaded: Loaded) -> Iterable[CheckFinding]:
    inv = loaded.inventory
    if not inv.talos_nodes:
        yield CheckFinding(NAME, "ok", "patches", "no Talos nodes in the inventory")
        return
    root = repo_root()
    rendered = patches.render(inv)
    warning, problems = schema_problems(inv, root, rendered)
    if warning:
        yield CheckFinding(NAME, "warning", "schema", warning)
    for problem in problems:
        yield CheckFinding(NAME, "error", problem.split(" ", 1)[0], problem.split(" ", 1)[1])
    if not warning and not problems:
        yield CheckFinding(
            NAME,
            "ok",
            "schema",
            f"{len(rendered)} patches valid against Talos {inv.cluster.talos_version} schema",
        )
    yield from merged_findings(loaded)
    on_disk = read_generated(root)
    drift = [p for p, text in rendered.items() if on_disk.get(p) != text]
    drift += patches.stale_files(rendered, on_disk)
    if not drift:
        yield CheckFinding(NAME, "ok", patches.PATCH_DIR, "committed patches match the inventory")
        return
    # The committed tree is rendered from config/domum.yaml: drift there is an error (CI fails);
    # with another inventory ($DOMUM_INVENTORY, tests) it is one warning.
    own = loaded.path.resolve() == DEFAULT_PATH.resolve()
    if not own:
        yield CheckFinding(
            NAME,
            "warning",
            patches.PATCH_DIR,
            f"{len(drift)} committed patch file(s) differ from what {loaded.path.name} renders "
            "(they are rendered from config/domum.yaml); `inv talos.genconfig` would rewrite them",
        )
        return
    for rel in sorted(drift):
        state = "missing" if rel not in on_disk else ("stale" if rel not in rendered else "differs")
        yield CheckFinding(
            NAME, "error", rel, f"{state}: does not match the inventory; run `inv talos.genconfig`"
        )


_LINK_KINDS = ("LinkConfig", "LinkAliasConfig", "BondConfig", "BridgeConfig", "VLANConfig")


def vip_link_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Domum's own check, not a Talos rule (Talos accepts any link name, e.g. a physical eth0):
    Domum always names its LAN link, so a VIP on a link no document defines or aliases would
    never be assigned on any control plane."""
    links = {str(d.get("name")) for d in docs if d.get("kind") in _LINK_KINDS}
    out = []
    for vip in (d for d in docs if d.get("kind") == "Layer2VIPConfig"):
        want = vip.get("link")
        if want and str(want) not in links:
            known = ", ".join(sorted(links)) or "none"
            out.append(
                f"Layer2VIPConfig/{vip.get('name')}: link {str(want)!r} is neither a configured "
                f"link nor a LinkAliasConfig alias (defined: {known})"
            )
    return out


def merged_findings(loaded: Loaded) -> Iterable[CheckFinding]:
    """One error per rule a node's merged config breaks, else one ok line."""
    inv = loaded.inventory
    rendered = patches.render(inv)
    problems = merged.merged_problems(inv, rendered)
    if not problems:
        for node_id, node in inv.talos_nodes.items():
            docs = merged.merged_config(inv, node_id, rendered)
            where = f"node {node_id} ({node.hostname})"
            problems += [f"{where}: {p}" for p in vip_link_problems(docs)]
    for problem in problems:
        where, _, message = problem.partition(": ")
        yield CheckFinding(NAME, "error", f"merged config {where}", message)
    if not problems:
        yield CheckFinding(
            NAME,
            "ok",
            "merged config",
            f"{len(inv.talos_nodes)} nodes: gen config + patches pass the Talos "
            f"{inv.cluster.talos_version.rsplit('.', 1)[0]} rules",
        )
