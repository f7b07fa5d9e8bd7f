"""Image Factory schematic ids for the nodes a task touches, and the two plan steps that record
them: registering each distinct schematic with the factory (a POST creates it there, so it is a
write, not a probe) and writing schematics.lock.

Planning only reads (inventory, lock file). Online, a node's id is the one computed locally: the
factory's id is the sha256 of the same canonical YAML, so the plan (installer images included)
is known before the factory answers, and the register step checks that the factory agrees.
Offline, the id comes from the inventory, else the lock, else the computation.

The factory serves images and installers only for schematics POSTed to it (the id is a hash it
cannot invert), so every task that uses an id (genconfig's installer, pi.flash's image,
create-vm's ISO, upgrade's installer) registers it first: `use_steps`, or `record_steps(use=True)`.
An unreachable factory then stops the run unless the id was recorded before (schematics.lock or
the inventory's `schematic.id`); `--offline` plans refuse a merely computed id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import DomumError
from ...inventory.model import Inventory
from ...plan import Local, ResultOf, Step
from ...run import LocalHandler, write_atomic
from ..schematic import node_image_urls, node_installer_image, node_schematic_id, schematic_for
from . import facts

REGISTER = "talos.schematic-register"
LOCK = "talos.schematic-lock"
FACTORY_TIMEOUT_S = 10.0


@dataclass
class Resolved:
    node_id: int
    hostname: str
    platform: str
    schematic_yaml: str
    id: str
    source: str  # "factory" (to be registered) | "inventory" | "lock" | "computed"
    note: str
    installer: str
    images: dict[str, str]


def resolve(inv: Inventory, node_ids: Iterable[int], *, offline: bool) -> dict[int, Resolved]:
    """The id each node's plan uses (read-only: the lock is read, never written here)."""
    lock = facts.read_lock(facts.lock_path())
    out: dict[int, Resolved] = {}
    for i in node_ids:
        node = inv.nodes[i]
        sch = schematic_for(inv, node)
        if offline:
            inv_id = node.schematic.id if node.schematic is not None else None
            res = facts.resolve_schematic_id(sch, inventory_id=inv_id, lock=lock)
        else:
            res = facts.ResolvedId(sch.local_id, "factory")
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
    return out


def record_steps(
    inv: Inventory, resolved: Mapping[int, Resolved], first: int, *, use: bool = False
) -> list[Step]:
    """Register each distinct schematic, then record the factory's answers in the lock.
    `first`: the index the register step gets in its plan (the lock step reads its result).
    `use`: the plan then uses the ids (installer, image, ISO): the factory serves only
    schematics POSTed to it, so an unreachable factory stops the run at this step unless the
    id is recorded (schematics.lock or the inventory's schematic.id: registered before)."""
    ids: dict[str, list[int]] = {}
    for i, r in resolved.items():
        if r.source == "factory":
            ids.setdefault(r.id, []).append(i)
    if not ids:
        return []
    factory = inv.cluster.image_factory
    args: dict[str, Any] = {"factory": factory, "ids": ids}
    if use:
        args["recorded"] = recorded_ids(inv, resolved)
    return [
        Local(
            REGISTER,
            args,
            desc=f"POST {factory.rstrip('/')}/schematics per distinct schematic; "
            "the factory must answer the id computed here"
            + ("; unreachable: only ids recorded before may be used" if use else ""),
        ),
        Local(
            LOCK,
            {"path": str(facts.lock_path()), "registered": ResultOf(first)},
            desc="record the ids the factory confirmed",
        ),
    ]


def recorded_ids(inv: Inventory, resolved: Mapping[int, Resolved]) -> list[str]:
    """The ids among `resolved` that an earlier registration recorded: in the lock (the
    factory's confirmed answers) or as a node's inventory `schematic.id`."""
    lock = facts.read_lock(facts.lock_path())
    known = {e["id"] for e in lock.values()}
    known |= {n.schematic.id for n in inv.nodes.values() if n.schematic and n.schematic.id}
    return sorted({r.id for r in resolved.values() if r.id in known})


def use_steps(inv: Inventory, node_ids: Iterable[int]) -> tuple[dict[int, Resolved], list[Step]]:
    """For a task that uses the nodes' ids: each node's resolution and the steps that register
    its schematic and record it, to run first in the plan (the register step at index 0).
    A node whose inventory `schematic.id` is not its schematic's is bad input (ConfigError):
    only the schematic's own document can be registered."""
    ids = list(node_ids)
    check_inventory_ids(inv, ids)
    resolved = resolve(inv, ids, offline=False)
    return resolved, record_steps(inv, resolved, first=0, use=True)


def check_inventory_ids(inv: Inventory, node_ids: Iterable[int]) -> None:
    """Every inventory `schematic.id` among the nodes is the id of the schematic it describes."""
    for i in node_ids:
        node_schematic_id(inv, inv.nodes[i])


def refuse_unrecorded_offline(resolved: Mapping[int, Resolved]) -> None:
    """Offline (the factory not asked), a plan may use only ids an earlier registration
    recorded (the lock or the inventory): a computed id may never have been POSTed, and the
    factory serves nothing for it. Refused while planning: the dry-run says so too."""
    missing = sorted(i for i, r in resolved.items() if r.source == "computed")
    if not missing:
        return
    from ...errors import Refused

    sid = resolved[missing[0]].id
    raise Refused(
        f"--offline: schematic {sid} (nodes {', '.join(map(str, missing))}) is not recorded in "
        "schematics.lock or the inventory, so it may never have been registered; the image "
        "factory serves installers only for registered schematics",
        hint="run without --offline (the plan registers it first), or `inv talos.schematic` "
        "once online to record the ids for offline use",
    )


@dataclass
class Registered:
    """The register step's outcome: confirmed ids (-> canonical YAML), and why others are not."""

    confirmed: dict[str, str]
    unconfirmed: dict[str, str]


def _post(factory: str, body: str) -> str:
    """POST one schematic; its id. Unreachable: DomumError; any other failure is fatal too."""
    from ... import download

    url = factory.rstrip("/") + "/schematics"
    status, answer = download.post(
        url, body.encode(), content_type="application/yaml", timeout_s=FACTORY_TIMEOUT_S
    )
    if status not in (200, 201):
        text = answer.decode(errors="replace").strip()[:200]
        raise _Rejected(f"image factory {url}: HTTP {status}: {text}")
    try:
        sid = str(json.loads(answer)["id"])
    except (ValueError, KeyError, TypeError):
        raise _Rejected(f"image factory {url}: answer has no schematic id") from None
    if not re.fullmatch(r"[0-9a-f]{64}", sid):
        raise _Rejected(f"image factory {url}: bad schematic id {sid!r}")
    return sid


class _Rejected(DomumError):
    """The factory answered, and not with the id: the plan's installer images would not exist."""


def register(yamls: Mapping[str, str], args: Mapping[str, Any]) -> Registered:
    """POST each schematic (`yamls`: id -> canonical YAML, from the same inventory the plan
    was made from). An unreachable factory is an outcome (ids stay as computed, one timeout is
    enough); a refusal or a different id stops the task before anything uses the id."""
    done = Registered({}, {})
    factory = str(args["factory"])
    recorded = args.get("recorded")
    for sid in args["ids"]:
        if done.unconfirmed:
            done.unconfirmed[sid] = next(iter(done.unconfirmed.values()))
            continue
        try:
            answer = _post(factory, yamls[sid])
        except _Rejected:
            raise
        except DomumError as exc:
            done.unconfirmed[sid] = str(exc).splitlines()[0]
            continue
        if answer != sid:
            raise DomumError(
                f"image factory {factory} answered schematic id {answer} for nodes "
                f"{', '.join(str(n) for n in args['ids'][sid])}, Domum computed {sid}",
                hint="report a Domum bug; --offline uses the computed id",
            )
        done.confirmed[sid] = yamls[sid]
    if recorded is not None:
        _refuse_unrecorded(done, set(recorded), factory, args["ids"])
    return done


def _refuse_unrecorded(
    done: Registered, recorded: set[str], factory: str, ids: Mapping[str, list[int]]
) -> None:
    """The plan's next steps use these ids: one the factory never confirmed may not exist
    there (an image or installer 404 at flash, ISO download or install time)."""
    missing = [sid for sid in done.unconfirmed if sid not in recorded]
    if not missing:
        return
    from ...errors import Refused

    nodes = sorted(n for sid in missing for n in ids[sid])
    raise Refused(
        f"image factory {factory} could not register schematic {missing[0]} (nodes "
        f"{', '.join(map(str, nodes))}): {done.unconfirmed[missing[0]]}; the factory serves "
        "images and installers only for registered schematics, and this id is not recorded "
        "in schematics.lock or the inventory",
        hint="run again when the factory is reachable (or `inv talos.schematic` once online "
        "to record the ids for offline use)",
    )


def write_lock(args: Mapping[str, Any]) -> None:
    """Merge the confirmed ids into the lock; unchanged content is not rewritten (no churn)."""
    from pathlib import Path

    result = args["registered"]
    registered: Registered = result.value
    path = Path(str(args["path"]))
    lock = facts.read_lock(path)
    before = facts.render_lock(lock)
    for sid, body in registered.confirmed.items():
        lock[sid] = {"id": sid, "schematic": body}
    after = facts.render_lock(lock)
    if after != before:
        write_atomic(path, after.encode())


def handlers(resolved: Mapping[int, Resolved]) -> dict[str, LocalHandler]:
    yamls = {r.id: r.schematic_yaml for r in resolved.values()}
    return {REGISTER: lambda args: register(yamls, args), LOCK: write_lock}


def confirmed(results: Sequence[Any]) -> Registered | None:
    """The register step's outcome among a run's results (None: nothing was registered)."""
    for r in results:
        if isinstance(r.step, Local) and r.step.action == REGISTER:
            value: Registered = r.value
            return value
    return None


def after_run(resolved: Mapping[int, Resolved], done: Registered | None) -> list[Resolved]:
    """What each node's id turned out to be: confirmed by the factory, or computed (why)."""
    out = []
    for r in resolved.values():
        if r.source == "factory" and done is not None and r.id not in done.confirmed:
            why = done.unconfirmed.get(r.id, "not registered")
            r = Resolved(**{**vars(r), "source": "computed", "note": f"{why}; id computed locally"})
        out.append(r)
    return out
