"""talos.discover against the talosctl stand-in in maintenance mode, the disk and MAC choice,
and the line edit of the inventory (comments and layout kept)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.talos.discover import choose, edit
from domum_tasks.talos.discover.facts import Disk, Link, parse_disks, parse_links
from domum_tasks.talos.discover.tasks import discover
from tests.test_talos_ops_exec import cluster_dir  # noqa: F401  (fixture)

AT = "127.0.0.153"  # the DHCP lease of a node in maintenance mode (loopback twin)

# What Talos v1.13 reports for the hardware (DiskSpec / LinkStatusSpec fields; the stand-in
# fills the rest as Talos marshals it).
SD = {"id": "mmcblk0", "size": 63864569856, "transport": "mmc", "model": "SN64G",
      "serial": "0x8d3e2a11", "sub_system": "/sys/class/block"}  # fmt: skip
NVME = {"id": "nvme0n1", "size": 500107862016, "transport": "nvme",
        "model": "Samsung SSD 980 500GB", "serial": "S64DNX0T123456A",
        "wwid": "eui.0025385b21404321"}  # fmt: skip
LOOP = {"id": "loop0", "size": 75000000, "readonly": True}
USB_STICK = {"id": "sda", "size": 32015679488, "transport": "usb", "model": "Ultra",
             "serial": "4C530001230907113072"}  # fmt: skip
CDROM = {"id": "sr0", "size": 104857600, "transport": "sata", "cdrom": True, "readonly": True}
LO = {"id": "lo", "type": "loopback", "hardwareAddr": "00:00:00:00:00:00",
      "permanentAddr": "", "flags": "UP,LOOPBACK,RUNNING,LOWER_UP"}  # fmt: skip


def end0(mac: str) -> dict[str, Any]:
    return {"id": "end0", "index": 2, "hardwareAddr": mac, "permanentAddr": mac, "driver": "macb"}


PI5 = {"disks": [LOOP, SD, NVME], "links": [LO, end0("d8:3a:dd:10:00:92")]}
MINI_PC = {"disks": [USB_STICK, NVME], "links": [LO, end0("70:5a:0f:10:00:97")]}


def run(capsys: pytest.CaptureFixture[str], **kw: Any) -> str:
    discover(Context(), at=AT, **kw)
    return capsys.readouterr().out


# --- the stand-in answers as a maintenance-mode node does ------------------------------------


def talosctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["talosctl", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.integration
@pytest.mark.contract_exempt("one argv puts --insecure before the subcommand on purpose")
def test_stand_in_serves_disks_and_links_only_insecure(fake_cli: Any, cluster_dir: Path) -> None:
    fake_cli.set_state(maintenance={AT: PI5})
    ok = talosctl("get", "disks", "--insecure", "--nodes", AT, "-o", "json")
    assert ok.returncode == 0, ok.stderr
    disks = parse_disks(ok.stdout)
    assert [d.id for d in disks] == ["loop0", "mmcblk0", "nvme0n1"]
    assert disks[2] == Disk("nvme0n1", "/dev/nvme0n1", 500107862016, "500 GB", model=NVME["model"],
                            serial=NVME["serial"], wwid=NVME["wwid"], transport="nvme")  # fmt: skip
    first = json.loads(ok.stdout.split("\n}\n")[0] + "\n}")
    assert first["node"] == "" and list(first) == ["metadata", "node", "spec"]  # json.go
    assert first["metadata"]["type"] == "Disks.block.talos.dev"
    links = parse_links(talosctl("get", "links", "--insecure", "-n", AT, "-o", "json").stdout)
    assert [(x.id, x.physical) for x in links] == [("lo", False), ("end0", True)]
    # no client certificate against a node without one: TLS fails on the self-signed cert
    bad = talosctl("get", "disks", "--talosconfig", "clusterconfig/talosconfig", "-n", AT, "-e", AT)
    assert bad.returncode == 1 and "certificate signed by unknown authority" in bad.stderr
    # --insecure against a configured node: it demands a client certificate
    bad = talosctl("get", "disks", "--insecure", "-n", "127.0.0.97")
    assert bad.returncode == 1 and "tls: certificate required" in bad.stderr
    # a flag before the subcommand swallows it (cobra), as the contract says
    assert talosctl("--insecure", "get", "disks", "-n", AT).returncode == 1


# --- choosing like an operator ----------------------------------------------------------------


def disk(d: dict[str, Any]) -> Disk:
    return Disk(
        d["id"], f"/dev/{d['id']}", d["size"], readonly=d.get("readonly", False),
        cdrom=d.get("cdrom", False), model=d.get("model", ""), serial=d.get("serial", ""),
        wwid=d.get("wwid", ""), transport=d.get("transport", ""),
    )  # fmt: skip


def test_candidates_skip_readonly_cdrom_and_removable_last() -> None:
    ok, notes = choose.candidates([disk(d) for d in (LOOP, USB_STICK, CDROM, NVME, SD)])
    assert [d.id for d in ok] == ["nvme0n1", "mmcblk0", "sda"]
    assert notes == ["/dev/loop0: skipped, read-only", "/dev/sr0: skipped, read-only"]


def test_stable_ref_is_the_path_alone_else_a_unique_selector() -> None:
    nvme, sd = disk(NVME), disk(SD)
    assert choose.stable_ref(nvme, [nvme]) == "/dev/nvme0n1"
    assert choose.stable_ref(nvme, [nvme, sd]) == {"serial": NVME["serial"]}
    twin = Disk("nvme1n1", "/dev/nvme1n1", 1, model=NVME["model"], serial=NVME["serial"],
                wwid="eui.other", transport="nvme")  # fmt: skip
    assert choose.stable_ref(nvme, [nvme, twin]) == {"wwid": NVME["wwid"]}
    star = Disk("sdb", "/dev/sdb", 1, serial="AB*1", transport="sata")
    assert choose.stable_ref(star, [star, nvme]) == "/dev/sdb"  # `*` is a glob in Talos


def test_pick_link_prefers_the_physical_link_that_is_up() -> None:
    down = Link("enp2s0", "ether", "", "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:01", False)
    up = Link("enp1s0", "ether", "", "aa:bb:cc:00:00:02", "aa:bb:cc:00:00:02", True)
    bond = Link("bond0", "ether", "bond", "aa:bb:cc:00:00:03", "", True)
    assert choose.pick_link([down, bond, up]) == (up, [])
    # a bond carries the address of a port: the permanent address is the burnt-in one
    spoofed = Link("end0", "ether", "", "02:00:00:00:00:01", "d8:3a:dd:10:00:92", True)
    assert spoofed.mac == "d8:3a:dd:10:00:92"


# --- the line edit ------------------------------------------------------------------------------

INVENTORY = """\
# top comment
nodes:
  # --- workers ---
  92:
    hostname: domum-xr2   # the Pi 5
    mac: d8:3a:dd:10:00:92
    install_disk: /dev/nvme0n1
    schematic:
      extensions: [a]

  97:
    hostname: domum-x
    mac: 70:5a:0f:10:00:97
# trailing
other: 1
"""


def test_edit_node_keeps_comments_and_only_touches_the_node() -> None:
    new = edit.edit_node(
        INVENTORY, 92, {"install_disk": None, "ephemeral_disk": {"serial": "S6"}, "mac": "x"}
    )
    assert "# the Pi 5" in new and "# top comment" in new and "# trailing" in new
    assert "    ephemeral_disk: {serial: S6}\n\n  97:" in new
    assert yaml.safe_load(new)["nodes"][92] == {
        "hostname": "domum-xr2", "mac": "x", "schematic": {"extensions": ["a"]},
        "ephemeral_disk": {"serial": "S6"},
    }  # fmt: skip
    # a block value is replaced whole; a MAC YAML 1.1 would read as a number is quoted
    new = edit.edit_node(INVENTORY, 92, {"schematic": None, "mac": "10:20:30:40:50:59"})
    assert (
        "extensions" not in new and yaml.safe_load(new)["nodes"][92]["mac"] == "10:20:30:40:50:59"
    )
    with pytest.raises(Exception, match="not found"):
        edit.edit_node(INVENTORY, 95, {"mac": "x"})


# --- the task against the stand-in -----------------------------------------------------------


@pytest.mark.integration
def test_pi5_gets_its_nvme_as_ephemeral_disk_by_serial(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cli.set_state(maintenance={AT: PI5})
    inventory = cluster_dir / "config" / "domum.yaml"
    before = inventory.read_text()
    out = run(capsys)
    assert "matched by its MAC d8:3a:dd:10:00:92" in out
    assert "+    ephemeral_disk: {serial: S64DNX0T123456A}" in out
    assert "-    ephemeral_disk: /dev/nvme0n1" in out and "--write" in out
    assert inventory.read_text() == before  # no --write: nothing changed
    run(capsys, write=True)
    after = yaml.safe_load(inventory.read_text())["nodes"][92]
    assert after["ephemeral_disk"] == {"serial": "S64DNX0T123456A"}
    assert "# boots its SD card" in inventory.read_text()  # comments stay
    out = run(capsys)
    assert "---" not in out  # a second run has nothing to change
    argvs = [c for c in fake_cli.calls if c[:2] == ["talosctl", "get"]]
    assert argvs[0][2:] == ["disks", "--talosconfig", "clusterconfig/talosconfig",
                            "--nodes", AT, "--endpoints", AT, "--insecure", "-o", "json"]  # fmt: skip


@pytest.mark.integration
def test_mini_pc_booted_from_usb_installs_to_its_nvme_by_serial(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cli.set_state(maintenance={AT: MINI_PC})
    discover(Context(), at=AT, write=True, json=True)
    report = json.loads(capsys.readouterr().out)
    assert report["node"] == 97 and report["written"] is True
    assert report["changes"] == {
        "install_disk_selector": {"serial": "S64DNX0T123456A"}, "install_disk": None,
    }  # fmt: skip
    node = yaml.safe_load((cluster_dir / "config" / "domum.yaml").read_text())["nodes"][97]
    assert "install_disk" not in node and node["install_disk_selector"]["serial"].startswith("S64")


@pytest.mark.integration
def test_refusals(fake_cli: Any, cluster_dir: Path) -> None:
    fake_cli.set_state(maintenance={AT: MINI_PC})
    with pytest.raises(Exit) as exc:  # the MAC says this is node 97
        discover(Context(), at=AT, node="98")
    assert exc.value.code == 2 and "use --node 97" in str(exc.value.message)
    with pytest.raises(Exit) as exc:
        discover(Context(), at="not-an-ip")
    assert exc.value.code == 2
    with pytest.raises(Exit) as exc:  # nothing in maintenance mode there
        discover(Context(), at="127.0.0.97", dry_run=True)
    assert exc.value.code == 1 and "maintenance mode" in str(exc.value.message)
    fake_cli.set_state(maintenance={AT: {"disks": [SD], "links": [end0("b8:27:eb:10:00:93")]}})
    with pytest.raises(Exit) as exc:  # the Pi-hole's MAC: a raspios node
        discover(Context(), at=AT)
    assert exc.value.code == 2 and "runs raspios" in str(exc.value.message)
    fake_cli.set_state(maintenance={AT: {"disks": [NVME], "links": [end0("02:11:22:33:44:55")]}})
    with pytest.raises(Exit) as exc:  # an unknown machine at an unknown address
        discover(Context(), at=AT)
    assert exc.value.code == 2 and "--node N" in str(exc.value.message)


@pytest.mark.integration
@pytest.mark.parity("talos.discover")
def test_discover_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    fake_cli.set_state(maintenance={AT: PI5})
    (plan,) = plan_parity(discover, at=AT, write=True)
    assert [s["kind"] for s in plan] == ["write"]
    assert plan[0]["path"].endswith("config/domum.yaml")
    (plan,) = plan_parity(discover, at=AT, write=True)  # recorded now: nothing to write
    assert plan == []
