"""Read-only probes of the Talos cluster, the schematics lock, and pure parsers of their output.

Probes never raise for an unreachable node: they return facts with `error` set, so planners can
plan as for a fresh target and say which assumption they made (DESIGN principle 2).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import DomumError
from ..argv import flux, talosctl
from ..schematic import Schematic

if TYPE_CHECKING:
    from ...inventory.model import Inventory, Node

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]
PROBE_TIMEOUT_S = 20.0


def default_runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    from ...run import run_cmd

    return run_cmd(argv, timeout_s=PROBE_TIMEOUT_S, check=False)


# --- pure parsers ----------------------------------------------------------------------------------


def json_stream(text: str) -> Iterator[dict[str, Any]]:
    """talosctl `-o json` prints one JSON object per resource, concatenated (not an array)."""
    decoder = json.JSONDecoder()
    pos, text = 0, text.strip()
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        if isinstance(obj, list):
            yield from (o for o in obj if isinstance(o, dict))
        elif isinstance(obj, dict):
            yield obj


def parse_server_versions(text: str) -> dict[str, str]:
    """`talosctl version` output -> {node: tag} from the Server section (`NODE:` then the tag)."""
    out: dict[str, str] = {}
    node = ""
    in_server = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Server:"):
            in_server = True
        elif in_server and (m := re.match(r"NODE:\s*(\S+)", line)):
            node = m.group(1)
        elif in_server and (m := re.match(r"(?:Tag:|Talos)\s*(v\S+)", line)):
            out[node] = m.group(1)  # `Tag: v1.13.9`, or `Talos v1.13.9` with --short
    return out


def parse_machine_status(text: str) -> tuple[str, bool] | None:
    """`get machinestatus -o json` -> (stage, ready) of the first resource, or None."""
    for obj in json_stream(text):
        spec = obj.get("spec") or {}
        status = spec.get("status") or {}
        return str(spec.get("stage", "unknown")), bool(status.get("ready", False))
    return None


def parse_schematic_extension(text: str) -> str | None:
    """`get extensions -o json` -> the Image Factory schematic id the node booted from.

    The factory adds a pseudo-extension named "schematic" whose version is the id.
    """
    for obj in json_stream(text):
        meta = (obj.get("spec") or {}).get("metadata") or {}
        if meta.get("name") == "schematic" and re.fullmatch(
            r"[0-9a-f]{64}", str(meta.get("version"))
        ):
            return str(meta["version"])
    return None


def parse_etcd_members(text: str) -> list[str]:
    """`talosctl etcd members` table -> member hostnames (empty when no table rows)."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or "HOSTNAME" not in lines[0]:
        return []
    col = lines[0].index("HOSTNAME")
    return [row[col] for row in lines[1:] if len(row) > col]


@dataclass(frozen=True)
class Kustomization:
    namespace: str
    name: str
    suspended: bool
    ready: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def _table_rows(text: str) -> list[list[str]]:
    """Cells of flux's tablewriter table: cells are space-padded and each is followed by a tab.

    Text whose tabs were expanded (copied from a terminal) is cut at the header's column starts.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    if "\t" in lines[0]:
        return [[c.strip() for c in ln.rstrip("\t ").split("\t")] for ln in lines]
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [[ln[a:b].strip() for a, b in bounds] for ln in lines]


def parse_kustomizations(text: str, namespace: str = "flux-system") -> list[Kustomization]:
    """`flux get kustomizations [-A]` table -> Kustomizations, found by header name.

    Columns are located by name because flux has reordered them (v0.x printed NAME READY MESSAGE
    REVISION SUSPENDED; v2 prints NAME REVISION SUSPENDED READY MESSAGE); NAMESPACE is there only
    with --all-namespaces, otherwise `namespace` is the one asked for. "no objects found" goes to
    stderr, so empty stdout means none. Raises ValueError on a table without NAME/SUSPENDED.
    """
    rows = _table_rows(text)
    if not rows:
        return []
    head = [h.upper() for h in rows[0]]
    if "NAME" not in head or "SUSPENDED" not in head:
        raise ValueError(f"not a flux kustomizations table (header {' '.join(rows[0])!r})")
    out = []
    for row in rows[1:]:
        cell = dict(zip(head, row, strict=False))
        if not cell.get("NAME") or cell.get("SUSPENDED", "").lower() not in ("true", "false"):
            raise ValueError(f"unreadable kustomizations row {row!r}")
        out.append(
            Kustomization(
                cell.get("NAMESPACE") or namespace,
                cell["NAME"],
                cell["SUSPENDED"].lower() == "true",
                cell.get("READY", ""),
            )
        )
    return out


# --- probes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeFacts:
    node_id: int
    hostname: str
    ip: str
    version: str | None = None
    schematic: str | None = None
    stage: str | None = None
    ready: bool | None = None
    error: str = ""

    @property
    def reachable(self) -> bool:
        return self.version is not None


def run_probe(runner: Runner, argv: Sequence[str]) -> tuple[bool, str, str]:
    """(ok, stdout, the reason: stderr's last line or the exit code) of one read-only command."""
    try:
        proc = runner(argv)
    except DomumError as exc:
        return False, "", str(exc).splitlines()[0]
    err = (proc.stderr or "").strip().splitlines()
    return proc.returncode == 0, proc.stdout or "", err[-1] if err else f"exit {proc.returncode}"


def probe_node(inv: Inventory, node_id: int, runner: Runner = default_runner) -> NodeFacts:
    """Running version, booted schematic and readiness of one node (read-only)."""
    node = inv.node(node_id)
    ip = str(node.ip)
    base = NodeFacts(node_id, node.hostname, ip)
    ok, out, err = run_probe(runner, talosctl(inv, "version", "--short", nodes=[ip]))
    if not ok:
        return NodeFacts(node_id, node.hostname, ip, error=err)
    versions = parse_server_versions(out)
    version = versions.get(ip) or next(iter(versions.values()), None)
    ok, out, _ = run_probe(runner, talosctl(inv, "get", "machinestatus", "-o", "json", nodes=[ip]))
    status = parse_machine_status(out) if ok else None
    ok, out, _ = run_probe(runner, talosctl(inv, "get", "extensions", "-o", "json", nodes=[ip]))
    schematic = parse_schematic_extension(out) if ok else None
    return NodeFacts(
        base.node_id,
        base.hostname,
        ip,
        version=version or "unknown",
        schematic=schematic,
        stage=status[0] if status else None,
        ready=status[1] if status else None,
    )


def probe_config_diff(
    inv: Inventory, node_id: int, path: str, mode: str, runner: Runner = default_runner
) -> tuple[bool, str]:
    """talosctl's own `apply-config --dry-run` on a running node: (answered, its output).

    Read-only: the node validates the file and reports the mode it would use and the config
    diff, and applies nothing. A node that does not answer gives (False, the error line).
    """
    ip = str(inv.node(node_id).ip)
    argv = talosctl(inv, "apply-config", "--dry-run", "--file", path, "--mode", mode, nodes=[ip])
    ok, out, err = run_probe(runner, argv)
    return ok, (out.strip() if ok else err)


def probe_etcd_members(
    inv: Inventory, node: Node, runner: Runner = default_runner
) -> tuple[list[str] | None, str]:
    """Members etcd reports via `node`, or (None, reason) when it cannot answer."""
    ok, out, err = run_probe(runner, talosctl(inv, "etcd members", nodes=[str(node.ip)]))
    return (parse_etcd_members(out), "") if ok else (None, err)


def probe_etcd_members_any(
    inv: Inventory, runner: Runner = default_runner
) -> tuple[list[str] | None, str]:
    """Ask every control plane in turn, first one first, until one lists members.

    A cluster whose first control plane was reset still runs etcd on the others; that node then
    answers nothing, and bootstrapping it would start a second, split etcd cluster.
    """
    errors: list[str] = []
    answered = False
    for node in inv.controlplanes.values():
        members, err = probe_etcd_members(inv, node, runner)
        if members:
            return members, ""
        answered = answered or members is not None
        errors.append(f"{node.hostname}: {err or 'no members listed'}")
    return ([] if answered else None), "; ".join(errors)


def probe_kustomizations(
    inv: Inventory, runner: Runner = default_runner
) -> tuple[list[Kustomization] | None, str]:
    """Every Flux Kustomization in every namespace with its SUSPENDED state, or (None, reason).

    Read-only (`flux get kustomizations --all-namespaces`); the upgrade suspends only those not
    already suspended, so resuming afterwards never undoes an operator's own suspension.
    """
    ok, out, err = run_probe(runner, flux(inv, "get", "kustomizations", "--all-namespaces"))
    if not ok:
        return None, err
    try:
        return parse_kustomizations(out), ""
    except ValueError as exc:
        return None, str(exc)


# --- Image Factory schematic ids --------------------------------------------------------------------


def schematic_key(schematic: Schematic) -> str:
    """Lock-file key: sha256 of the canonical schematic YAML."""
    return hashlib.sha256(schematic.canonical_yaml().encode()).hexdigest()


def lock_path() -> Path:
    """schematics.lock next to the inventory (config/ in a checkout): each inventory its own."""
    from ... import settings

    return settings.inventory_path().parent / "schematics.lock"


def read_lock(path: Path) -> dict[str, dict[str, str]]:
    """{key: {"id": ..., "schematic": canonical yaml}}; a missing or unreadable lock is empty."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(v, dict) and "id" in v}
        if isinstance(data, dict)
        else {}
    )


def render_lock(entries: dict[str, dict[str, str]]) -> str:
    """Deterministic lock content (sorted keys, no timestamps), so git diffs stay quiet."""
    return json.dumps(entries, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class ResolvedId:
    id: str
    source: str  # "factory" | "inventory" | "lock" | "computed"
    note: str = ""


def resolve_schematic_id(
    schematic: Schematic, *, inventory_id: str | None, lock: dict[str, dict[str, str]]
) -> ResolvedId:
    """The id known without asking the factory: the inventory's `schematic.id`, else the lock's
    record of an earlier factory answer, else the id computed locally (the same sha256 the
    factory answers; ops/schematics.py registers it when online)."""
    key = schematic_key(schematic)
    if inventory_id:
        note = ""
        if inventory_id != schematic.local_id:
            note = "inventory schematic.id differs from the schematic's content: stale id?"
        return ResolvedId(inventory_id, "inventory", note)
    if key in lock:
        return ResolvedId(lock[key]["id"], "lock")
    return ResolvedId(schematic.local_id, "computed", "id computed locally")
