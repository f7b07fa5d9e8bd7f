"""`talosctl get disks` / `get links` of the stand-in, for nodes in maintenance mode.

State key (see fakecli.py):
    maintenance: {ip: {"disks": [disk, ...], "links": [link, ...]}}
        a node with no config yet: it answers only `--insecure`. With the lifecycle
        (talos_lifecycle.py), `nodes: {ip: stage}` decides the stage and this map only
        supplies the hardware. A disk is {"id": "nvme0n1",
        "size": bytes, ...DiskSpec fields}; a link is {"id": "end0", ...LinkStatusSpec fields}.

Shapes follow siderolabs/talos v1.13.9 (commit 3ebd10a7):
- pkg/machinery/resources/block/disk.go, DiskSpec: yaml keys, which are omitempty, pretty_size
  from go-humanize's Bytes (SetSize); Disks.block.talos.dev in namespace "runtime";
- pkg/machinery/resources/network/link_status.go, LinkStatusSpec (LinkStatuses.net.talos.dev,
  aliases link/links, namespace "network"); MACs marshal as net.HardwareAddr.String();
- cmd/talosctl/cmd/talos/output/json.go: one indented JSON object per resource, keys sorted (the
  resource goes through YAML into a map), plus "node";
- cmd/talosctl/pkg/talos/global/client.go, WithClientMaintenance: `--insecure` dials the
  --nodes as endpoints without reading the talosconfig and sends no node metadata, so
  helpers.ForEachResource reports node "" (cmd/talosctl/pkg/talos/helpers/resources.go).
The TLS failures are Go's crypto/tls and x509 messages as gRPC reports them: a maintenance node
serves a self-signed certificate, a configured node demands a client certificate.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml
from fakecli import Call, Fail

DISK_TYPES = {"disks", "disk", "disks.block.talos.dev"}
LINK_TYPES = {
    "links",
    "link",
    "linkstatus",
    "linkstatuses",
    "linkstatuses.net.talos.dev",
}
TYPES = DISK_TYPES | LINK_TYPES
STAMP = "2026-12-03T09:00:00Z"
UNKNOWN_AUTHORITY = (
    'rpc error: code = Unavailable desc = connection error: desc = "transport: authentication '
    'handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"'
)
CERT_REQUIRED = (
    'rpc error: code = Unavailable desc = connection error: desc = "error reading server '
    'preface: remote error: tls: certificate required"'
)


def pretty_size(size: int) -> str:
    """go-humanize Bytes: SI units, one decimal below 10."""
    if size < 10:
        return f"{size} B"
    exp = math.floor(math.log(size) / math.log(1000))
    value = math.floor(size / 1000**exp * 10 + 0.5) / 10
    unit = ["B", "kB", "MB", "GB", "TB", "PB", "EB"][exp]
    return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"


def disk_spec(d: dict[str, Any]) -> dict[str, Any]:
    size = int(d.get("size", 0))
    spec: dict[str, Any] = {
        "dev_path": d.get("dev_path", f"/dev/{d['id']}"),
        "size": size,
        "pretty_size": pretty_size(size),
        "io_size": int(d.get("io_size", 512)),
        "sector_size": int(d.get("sector_size", 512)),
        "readonly": bool(d.get("readonly", False)),
        "cdrom": bool(d.get("cdrom", False)),
    }
    for key in ("model", "serial", "modalias", "wwid", "uuid", "bus_path", "sub_system"):
        if d.get(key):
            spec[key] = d[key]
    for key in ("transport", "rotational", "secondary_disks", "symlinks"):
        if d.get(key):
            spec[key] = d[key]
    return spec


def link_spec(link: dict[str, Any]) -> dict[str, Any]:
    mac = link.get("hardwareAddr", "")
    spec: dict[str, Any] = {
        "index": int(link.get("index", 1)),
        "type": link.get("type", "ether"),
        "linkIndex": int(link.get("linkIndex", 0)),
        "flags": link.get("flags", "UP,BROADCAST,RUNNING,MULTICAST,LOWER_UP"),
        "hardwareAddr": mac,
        "permanentAddr": link.get("permanentAddr", mac),
        "broadcastAddr": link.get("broadcastAddr", "ff:ff:ff:ff:ff:ff"),
        "mtu": int(link.get("mtu", 1500)),
        "queueDisc": link.get("queueDisc", "pfifo_fast"),
        "operationalState": link.get("operationalState", "up"),
        "kind": link.get("kind", ""),
        "slaveKind": link.get("slaveKind", ""),
        "linkState": bool(link.get("linkState", True)),
        "port": link.get("port", "TwistedPair"),
        "duplex": link.get("duplex", "Full"),
    }
    for key in ("alias", "altNames", "busPath", "driver", "product", "vendor", "speedMbit"):
        if link.get(key):
            spec[key] = link[key]
    return spec


def _resource(rtype: str, item: dict[str, Any]) -> dict[str, Any]:
    disk = rtype in DISK_TYPES
    return {
        "node": "",
        "metadata": {
            "namespace": "runtime" if disk else "network",
            "type": "Disks.block.talos.dev" if disk else "LinkStatuses.net.talos.dev",
            "id": item["id"],
            "version": 1,
            "owner": "block.DisksController" if disk else "network.LinkStatusController",
            "phase": "running",
            "created": STAMP,
            "updated": STAMP,
        },
        "spec": disk_spec(item) if disk else link_spec(item),
    }


def get(call: Call, client: Any) -> None:
    """`get disks|links` against nodes that may be in maintenance mode."""
    import talos_lifecycle as life  # (imports this module: import late)

    maintenance: dict[str, Any] = call.state.get("maintenance") or {}
    rtype = call.pos[0].lower()
    if not call.bool("--insecure"):
        nodes, _, _ = client(call)  # the talosconfig must resolve first, as for any command
        if any(life.stage(call, n) == "maintenance" for n in nodes):
            raise Fail(UNKNOWN_AUTHORITY)
        call.injected_failure(nodes)
        return _print(call, rtype, [])  # configured nodes: no hardware modelled
    nodes, _, _ = client(call)  # --insecure: no talosconfig; a modelled node's stage decides
    node = nodes[0]  # endpoints = nodes: the client talks to one of them
    if life.stage(call, node) != "maintenance":
        raise Fail(CERT_REQUIRED)
    call.injected_failure([node])
    key = "disks" if rtype in DISK_TYPES else "links"
    items = [_resource(rtype, it) for it in (maintenance.get(node) or {}).get(key) or []]
    if len(call.pos) > 1:
        items = [it for it in items if it["metadata"]["id"] == call.pos[1]]
        if not items:
            raise Fail(
                f"rpc error: code = NotFound desc = resource {call.pos[1]} of type "
                f'"{_resource(rtype, {"id": ""})["metadata"]["type"]}" not found'
            )
    _print(call, rtype, items)


def _print(call: Call, rtype: str, items: list[dict[str, Any]]) -> None:
    fmt = call.flag("--output") or "table"
    if fmt == "json":
        for it in items:
            call.print(json.dumps(it, indent=4, sort_keys=True))
    elif fmt == "yaml":
        for i, it in enumerate(items):
            body = {"metadata": it["metadata"], "spec": it["spec"]}
            text = yaml.safe_dump(body, sort_keys=False).rstrip("\n")
            call.print(("---\n" if i else "") + f"node: {it['node']}\n" + text)
    else:
        disk = rtype in DISK_TYPES
        head = (
            "NODE   NAMESPACE   TYPE   ID   VERSION   SIZE   READ ONLY   TRANSPORT   MODEL   SERIAL"
            if disk
            else "NODE   NAMESPACE   TYPE   ID   VERSION   TYPE   KIND   HW ADDR   OPER STATE   LINK STATE"
        )
        call.print(head)
        for it in items:
            md, s = it["metadata"], it["spec"]
            cells = (
                [s["pretty_size"], str(s["readonly"]).lower(), s.get("transport", ""),
                 s.get("model", ""), s.get("serial", "")]
                if disk
                else [s["type"], s["kind"], s["hardwareAddr"], s["operationalState"],
                      str(s["linkState"]).lower()]
            )  # fmt: skip
            call.print(
                "   ".join([it["node"], md["namespace"], md["type"].split(".")[0], md["id"], "1"])
                + "   "
                + "   ".join(cells)
            )
