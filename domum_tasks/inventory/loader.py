"""The one inventory loader: config/domum.yaml (or $DOMUM_INVENTORY) into a typed Inventory.

Errors name the file, the line, the field path and what would be valid, and are raised as a
single ConfigError (exit code 2), one problem per line:

    config/domum.yaml:42: nodes.92.ip: 10.0.11.92 is outside cluster.node_cidr 10.0.10.0/24
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .. import settings
from ..errors import InventoryInvalid
from .containers import container_findings
from .disk_checks import disk_findings
from .findings import Finding, Loc
from .model import PI_PLATFORMS, BackupJob, Inventory
from .site_checks import site_findings

REPO_ROOT = settings.PACKAGE_CHECKOUT
DEFAULT_PATH = REPO_ROOT / "config" / "domum.yaml"  # the embedded default homelab


def repo_root() -> Path:
    """Where relative inventory paths (clusterconfig/talosconfig, ...) live; commands run from
    here, so `inv` works the same from any subdirectory (settings.repo_root)."""
    return settings.repo_root()


def inventory_path() -> Path:
    return settings.inventory_path()


def display_path(path: Path) -> str:
    """Paths inside the repo are shown relative to it, as users type them."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --- YAML positions -------------------------------------------------------------------------


def _duplicate_keys(node: yaml.Node, loc: Loc = ()) -> Iterator[Finding]:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                yield Finding(
                    "error",
                    (*loc, name),
                    "duplicate key; each key may appear once",
                    key.start_mark.line + 1,
                )
            seen.add(name)
            yield from _duplicate_keys(value, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, i))


def line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the deepest YAML node along `loc` (the key's line for mapping entries)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if str(key.value) == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                return line
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


# --- validation -----------------------------------------------------------------------------


# Pydantic's own wording for these says what is wrong but not what would be right.
_EXAMPLES = {
    "ip_v4_address": "is not an IPv4 address (e.g. 10.0.10.90)",
    "ip_v4_network": "is not an IPv4 network in canonical form (e.g. 10.0.10.0/24)",
    "dict_type": "must be a mapping of key: value lines",
    "list_type": "must be a list, e.g. [a, b]",
    "model_type": "must be a mapping of key: value lines",
}


def _pydantic_findings(exc: ValidationError) -> Iterator[Finding]:
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == "unknown_key":
            loc = (*loc, ctx["key"])
        # Errors raised inside a validator are prefixed "Value error, "; the rest is ours.
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] in _EXAMPLES:
            msg = f"{err.get('input')!r} {_EXAMPLES[err['type']]}"
        elif err["type"] not in ("unknown_key", "format") and "input" in err:
            value = err["input"]
            if not isinstance(value, dict | list):
                msg = f"{msg} (got {value!r})"
        yield Finding("error", loc, msg)


def cross_check(inv: Inventory) -> Iterator[Finding]:
    """Checks that need the whole inventory; pure, so `inv check` can list every finding."""
    c = inv.cluster
    seen: dict[str, dict[object, int]] = {"ip": {}, "mac": {}, "hostname": {}}
    for node_id, node in sorted(inv.nodes.items()):
        base: Loc = ("nodes", node_id)
        if node.ip.packed[-1] != node_id:
            yield Finding(
                "error",
                (*base, "ip"),
                f"{node.ip} does not end in .{node_id}; a node's id is the last octet of its IP",
            )
        if node.ip not in c.node_cidr:
            yield Finding(
                "error", (*base, "ip"), f"{node.ip} is outside cluster.node_cidr {c.node_cidr}"
            )
        if node.ip == c.vip:
            yield Finding(
                "error", (*base, "ip"), f"{node.ip} is the cluster VIP; pick a free address"
            )
        if node.ip == c.gateway:
            yield Finding("error", (*base, "ip"), f"{node.ip} is the gateway; pick a free address")
        for field in ("ip", "mac", "hostname"):
            value = getattr(node, field)
            if value in seen[field]:
                yield Finding(
                    "error",
                    (*base, field),
                    f"{value} is already used by node {seen[field][value]}; must be unique",
                )
            seen[field][value] = node_id
        yield from _node_shape(inv, base, node_id)

    if c.vip not in c.node_cidr:
        yield Finding(
            "error", ("cluster", "vip"), f"{c.vip} is outside cluster.node_cidr {c.node_cidr}"
        )
    if c.gateway not in c.node_cidr:
        yield Finding(
            "error",
            ("cluster", "gateway"),
            f"{c.gateway} is outside cluster.node_cidr {c.node_cidr}",
        )
    if c.pod_cidr.overlaps(c.service_cidr):
        yield Finding(
            "error",
            ("cluster", "service_cidr"),
            f"{c.service_cidr} overlaps cluster.pod_cidr {c.pod_cidr}",
        )
    for name in ("pod_cidr", "service_cidr"):
        if getattr(c, name).overlaps(c.node_cidr):
            yield Finding(
                "error",
                ("cluster", name),
                f"{getattr(c, name)} overlaps cluster.node_cidr {c.node_cidr}",
            )
    if not c.endpoint.startswith("https://") or not c.endpoint.rstrip("/").endswith(":6443"):
        yield Finding(
            "error",
            ("cluster", "endpoint"),
            f"{c.endpoint!r} must look like https://<vip or name>:6443",
        )

    cps = len(inv.controlplanes)
    if cps == 0:
        yield Finding("error", ("nodes",), "no node has role controlplane; etcd needs 1, 3 or 5")
    elif cps % 2 == 0:
        yield Finding(
            "warning",
            ("nodes",),
            f"{cps} control planes: etcd tolerates no more failures than with {cps - 1}; use an odd count",
        )

    yield from _backup_refs(inv)
    yield from site_findings(inv)
    yield from disk_findings(inv)
    yield from container_findings(inv)
    if inv.nas is not None and inv.nas.host in {n.ip for n in inv.nodes.values()}:
        yield Finding("error", ("nas", "host"), f"{inv.nas.host} is already a node's IP")


def _node_shape(inv: Inventory, base: Loc, node_id: int) -> Iterator[Finding]:
    node = inv.nodes[node_id]
    if node.os == "raspios":
        if not node.is_pi:
            yield Finding(
                "error",
                (*base, "os"),
                f"raspios runs only on {', '.join(PI_PLATFORMS)}, not {node.platform}",
            )
        if node.role != "edge":
            yield Finding(
                "error",
                (*base, "role"),
                f"{node.role!r}: a raspios node is not in the cluster; use role 'edge'",
            )
    elif node.role == "edge":
        yield Finding(
            "error", (*base, "role"), "'edge' is for raspios nodes; use controlplane or worker"
        )
    if node.platform == "proxmox-vm":
        if node.vm is None:
            yield Finding(
                "error", (*base, "vm"), "a proxmox-vm node needs a vm: section (host, vmid)"
            )
        elif node.vm.host not in inv.proxmox:
            valid = ", ".join(sorted(inv.proxmox)) or "(none defined)"
            yield Finding(
                "error",
                (*base, "vm", "host"),
                f"{node.vm.host!r} is not a host under proxmox:; valid: {valid}",
            )
    elif node.vm is not None:
        yield Finding(
            "error", (*base, "vm"), f"only proxmox-vm nodes have a vm: section, not {node.platform}"
        )
    if node.image is not None and node.os != "raspios":
        yield Finding(
            "error",
            (*base, "image"),
            "image: is for raspios nodes; Talos images come from the schematic",
        )
    if node.raspios is not None and node.os != "raspios":
        yield Finding(
            "error", (*base, "raspios"), "raspios: is first-boot settings of raspios nodes only"
        )
    if node.longhorn is not None and node.os != "talos":
        yield Finding(
            "error", (*base, "longhorn"), "longhorn: is for Talos nodes (the cluster's storage)"
        )
    if node.watchdog is not None and node.os != "talos":
        yield Finding(
            "error", (*base, "watchdog"), "watchdog: is for Talos nodes (a WatchdogTimerConfig)"
        )


def _backup_refs(inv: Inventory) -> Iterator[Finding]:
    vmids = {n.vm.vmid for n in inv.nodes.values() if n.vm} | {
        c.vmid for c in inv.containers.values()
    }
    for name, job in sorted(inv.backup.jobs.items()):
        base: Loc = ("backup", "jobs", name)
        for i, target in enumerate(job.targets):
            if target not in inv.backup.targets:
                valid = ", ".join(sorted(inv.backup.targets)) or "(none defined)"
                yield Finding(
                    "error",
                    (*base, "targets", i),
                    f"{target!r} is not under backup.targets; valid: {valid}",
                )
        for i, host in enumerate(job.hosts):
            if host not in inv.nodes:
                yield Finding("error", (*base, "hosts", i), f"{host} is not a node id")
        for i, vmid in enumerate(job.vmids):
            if vmid not in vmids:
                yield Finding(
                    "error",
                    (*base, "vmids", i),
                    f"{vmid} is not the vmid of a proxmox-vm node or a container; known: {sorted(vmids)}",
                )
        yield from _backup_job_shape(inv, base, job)
    yield from _copy_to_refs(inv)


def _copy_to_refs(inv: Inventory) -> Iterator[Finding]:
    """targets.<t>.copy_to: other restic targets, which the jobs then do not list themselves
    (restic copy already fills them: backup/repository/copying.py)."""
    restic = sorted(t for t, s in inv.backup.targets.items() if s.type == "restic")
    for name, target in sorted(inv.backup.targets.items()):
        for i, dest in enumerate(target.copy_to):
            loc: Loc = ("backup", "targets", name, "copy_to", i)
            if target.type != "restic" or dest == name or dest not in restic:
                valid = ", ".join(t for t in restic if t != name) or "(none)"
                yield Finding(
                    "error", loc, f"{dest!r} is not another restic target; valid: {valid}"
                )
    for job_name, job in sorted(inv.backup.jobs.items()):
        for i, src in enumerate(job.targets):
            spec = inv.backup.targets.get(src)
            both = [d for d in (spec.copy_to if spec else []) if d in job.targets and d != src]
            if both:
                yield Finding(
                    "error",
                    ("backup", "jobs", job_name, "targets", i),
                    f"{src!r} already fills {', '.join(both)} by restic copy (its copy_to): "
                    f"list only {src!r}",
                )


def _backup_job_shape(inv: Inventory, base: Loc, job: BackupJob) -> Iterator[Finding]:
    """A job's kind decides which target type and which fields it needs."""
    from croniter import croniter

    want = "pve-storage" if job.kind == "vzdump" else "restic"
    for i, target in enumerate(job.targets):
        spec = inv.backup.targets.get(target)
        if spec is not None and spec.type != want:
            yield Finding(
                "error",
                (*base, "targets", i),
                f"{target!r} is a {spec.type} target; a {job.kind} job needs a {want} target",
            )
    if not croniter.is_valid(job.schedule):
        yield Finding(
            "error",
            (*base, "schedule"),
            f"{job.schedule!r} is not a cron schedule (5 fields, e.g. '15 3 * * *')",
        )
    needs = {"files": ("hosts", "paths"), "nas": ("shares",), "vzdump": ("vmids",)}
    for key in needs.get(job.kind, ()):
        if not getattr(job, key):
            yield Finding("error", (*base, key), f"a {job.kind} job needs at least one entry")
    shares = inv.nas.shares if inv.nas else {}
    for i, share in enumerate(job.shares):
        if share not in shares:
            valid = ", ".join(sorted(shares)) or "(no nas.shares defined)"
            yield Finding(
                "error", (*base, "shares", i), f"{share!r} is not under nas.shares; valid: {valid}"
            )
    for i, host in enumerate(job.hosts):
        node = inv.nodes.get(host)
        if job.kind == "files" and node is not None and node.os != "raspios":
            yield Finding(
                "error",
                (*base, "hosts", i),
                f"node {host} runs {node.os}; files jobs pull over SSH from raspios hosts only",
            )


# --- loading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    inventory: Inventory
    path: Path
    warnings: list[str]


def _raise(findings: list[Finding], root: yaml.Node | None, shown: str) -> None:
    problems = []
    for f in findings:
        f = f if f.line else Finding(f.severity, f.loc, f.message, line_of(root, f.loc))
        problems.append(f.parts(shown))
    raise InventoryInvalid(problems)


def _file_error(where: str, what: str) -> InventoryInvalid:
    return InventoryInvalid([(where, what)])


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """(node tree for lines and duplicate keys, data). libyaml's parser when PyYAML has it
    (~30x faster: every command loads the inventory); on any error the pure-Python parser
    parses again, so a broken file is reported with its usual message and line."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast), yaml.load(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)


def load_with_findings(path: Path | None = None) -> Loaded:
    """Load and fully validate an inventory; raise ConfigError listing every error."""
    path = path or inventory_path()
    shown = display_path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise _file_error(
            shown, "inventory file not found (set DOMUM_INVENTORY or create it)"
        ) from None
    except OSError as exc:
        raise _file_error(shown, f"cannot read inventory: {exc.strerror}") from None
    try:
        root, data = _parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark else shown
        problem = getattr(exc, "problem", None) or str(exc)
        raise _file_error(where, f"not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise _file_error(shown, "the inventory must be a mapping with cluster:, nodes:, flux: ...")

    dupes = list(_duplicate_keys(root)) if root is not None else []
    if dupes:
        _raise(dupes, root, shown)
    try:
        inv = Inventory.model_validate(data)
    except ValidationError as exc:
        # Cross-field checks too, on a repaired copy, so one pass reports every problem.
        from .partial import kept, repaired

        found = list(_pydantic_findings(exc))
        try:
            fixed = repaired(data, exc)
        except Exception:  # the repair is a bonus: it must never hide the field errors
            fixed = None
        if fixed is not None:
            cross = [f for f in cross_check(fixed[0]) if f.severity == "error"]
            found += [f for f in kept(cross, fixed[1]) if f not in found]
        _raise(found, root, shown)
        raise  # unreachable: _raise always raises
    findings = list(cross_check(inv))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        _raise(errors, root, shown)
    warnings = [
        Finding(f.severity, f.loc, f.message, line_of(root, f.loc)).render(shown)
        for f in findings
        if f.severity == "warning"
    ]
    return Loaded(inv, path, warnings)


def load(path: Path | None = None) -> Inventory:
    return load_with_findings(path).inventory
