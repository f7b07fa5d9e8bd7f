"""Read-only probes of a node in maintenance mode (`talosctl get disks|links --insecure`), the
inventory file as text, and pure parsers of their output.

Field names are those of Talos v1.13.9's resources as `talosctl get -o json` prints them
(siderolabs/talos pkg/machinery/resources/block/disk.go DiskSpec, yaml tags; network/
link_status.go LinkStatusSpec, and its Physical(): type ether and no kind).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..argv import talosctl
from ..ops.facts import Runner, default_runner, json_stream, run_probe

if TYPE_CHECKING:
    from ...inventory.model import Inventory


@dataclass(frozen=True)
class Disk:
    id: str
    dev_path: str
    size: int = 0
    pretty_size: str = ""
    readonly: bool = False
    cdrom: bool = False
    model: str = ""
    serial: str = ""
    wwid: str = ""
    transport: str = ""
    rotational: bool = False


@dataclass(frozen=True)
class Link:
    id: str
    type: str = ""
    kind: str = ""
    hardware_addr: str = ""
    permanent_addr: str = ""
    link_state: bool = False
    operational_state: str = ""

    @property
    def physical(self) -> bool:
        return self.type == "ether" and self.kind == ""

    @property
    def mac(self) -> str:
        """The burnt-in address: genconfig's LinkAliasConfig matches `link.permanent_addr`."""
        perm = self.permanent_addr
        return perm if perm and perm.strip("0:") else self.hardware_addr


@dataclass
class Hardware:
    at: str
    disks: list[Disk] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    error: str = ""


def _spec(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    meta = obj.get("metadata") or {}
    return str(meta.get("id", "")), obj.get("spec") or {}


def parse_disks(text: str) -> list[Disk]:
    out = []
    for obj in json_stream(text):
        rid, s = _spec(obj)
        out.append(
            Disk(
                id=rid,
                dev_path=str(s.get("dev_path") or f"/dev/{rid}"),
                size=int(s.get("size") or 0),
                pretty_size=str(s.get("pretty_size") or ""),
                readonly=bool(s.get("readonly")),
                cdrom=bool(s.get("cdrom")),
                model=str(s.get("model") or "").strip(),
                serial=str(s.get("serial") or "").strip(),
                wwid=str(s.get("wwid") or "").strip(),
                transport=str(s.get("transport") or ""),
                rotational=bool(s.get("rotational")),
            )
        )
    return out


def parse_links(text: str) -> list[Link]:
    out = []
    for obj in json_stream(text):
        rid, s = _spec(obj)
        out.append(
            Link(
                id=rid,
                type=str(s.get("type") or ""),
                kind=str(s.get("kind") or ""),
                hardware_addr=str(s.get("hardwareAddr") or "").lower(),
                permanent_addr=str(s.get("permanentAddr") or "").lower(),
                link_state=bool(s.get("linkState")),
                operational_state=str(s.get("operationalState") or ""),
            )
        )
    return out


def probe_argv(inv: Inventory, resource: str, at: str) -> tuple[str, ...]:
    """`talosctl get <resource> --insecure`: maintenance mode has no client certificate yet, and
    talosctl then dials the --nodes themselves (global/client.go, WithClientMaintenance)."""
    return talosctl(inv, ["get", resource], "--insecure", "-o", "json", nodes=[at], endpoints=[at])


def probe_hardware(inv: Inventory, at: str, runner: Runner = default_runner) -> Hardware:
    """Disks and links of the node at `at`; `error` set (first failure) when it cannot answer."""
    hw = Hardware(at)
    ok, out, err = run_probe(runner, probe_argv(inv, "disks", at))
    if not ok:
        hw.error = err
        return hw
    hw.disks = parse_disks(out)
    ok, out, err = run_probe(runner, probe_argv(inv, "links", at))
    if not ok:
        hw.error = err
        return hw
    hw.links = parse_links(out)
    return hw


def read_text(path: Path) -> tuple[str, int]:
    """The inventory's text and permission bits (the rewrite keeps them)."""
    return path.read_text(encoding="utf-8"), stat.S_IMODE(path.stat().st_mode)
