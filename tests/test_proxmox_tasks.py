"""The proxmox namespace against a real fakepve over verified HTTPS: idempotency, refusals, dry-runs."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.proxmox.power import tasks as power_tasks
from domum_tasks.proxmox.snapshots import tasks as snapshot_tasks
from domum_tasks.proxmox.status import tasks as status_tasks
from domum_tasks.proxmox.vm import tasks as vm_tasks
from tests.conftest import CONTRACTS, LOOPBACK_INVENTORY, REPO
from tests.fixtures.pve_sim import PveSim

pytestmark = pytest.mark.integration

ISO = "local:iso/talos-v1.13.9-ce4c9805.iso"  # sha256 schematic id of siderolabs/qemu-guest-agent


def run(task: Any, capsys: pytest.CaptureFixture[str], **kwargs: Any) -> str:
    task(Context(), **kwargs)
    return capsys.readouterr().out


def dry_json(task: Any, capsys: pytest.CaptureFixture[str], **kwargs: Any) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(run(task, capsys, dry_run=True, json=True, **kwargs))
    return steps


def test_create_vm_then_again_plans_nothing(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str], image_factory: Any
) -> None:
    steps = dry_json(vm_tasks.create_vm, capsys, node=96)
    # the factory serves the ISO only for a registered schematic: registered first
    assert [s.get("action") for s in steps[:2]] == [
        "talos.schematic-register",
        "talos.schematic-lock",
    ]
    assert [(s["method"], s["path"]) for s in steps[2:]] == [
        ("POST", "/nodes/pve1/storage/local/download-url"),
        ("POST", "/nodes/pve1/qemu"),
    ]
    assert pve_sim.pve.vm(196) is None  # the dry-run only probed
    assert image_factory.bodies == []  # and registered nothing

    out = run(vm_tasks.create_vm, capsys, node=96)
    assert "done: create VM 196 (domum-cp3, node 96)" in out
    (sid,) = steps[0]["args"]["ids"]
    assert image_factory.registered == [sid] and f"/image/{sid}/" in steps[2]["params"]["url"]
    vm = pve_sim.pve.vm(196)
    assert vm.name == "domum-cp3" and vm.status == "stopped"
    assert vm.config["ide2"].startswith(f"{ISO},media=cdrom")
    assert vm.config["net0"].startswith("virtio=BC:24:11:10:00:96,bridge=vmbr0")
    assert vm.config["boot"] == "order=scsi0;ide2;net0"
    assert vm.config["tags"] == "controlplane;domum;talos"
    assert str(vm.config["onboot"]) == "1"

    assert vm.config["scsihw"] == "virtio-scsi-pci" and str(vm.config["balloon"]) == "0"
    # (fakepve numbers the volumes in the order they come; PVE takes scsi0 before efidisk0)
    volume, options = vm.config["scsi0"].split(",", 1)
    assert volume.startswith("local-lvm:vm-196-disk-")
    assert options == "cache=writethrough,discard=on,size=40G,ssd=1"
    # Talos's guide: UEFI with a 4 MiB vars disk, no pre-enrolled keys, the q35 machine.
    assert (vm.config["bios"], vm.config["machine"]) == ("ovmf", "q35")
    assert vm.config["efidisk0"].startswith("local-lvm:vm-196-disk-")
    assert "efitype=4m" in vm.config["efidisk0"]
    assert "pre-enrolled-keys=0" in vm.config["efidisk0"]

    assert dry_json(vm_tasks.create_vm, capsys, node=96) == []
    before = len(pve_sim.sent)
    out = run(vm_tasks.create_vm, capsys, node=96)
    assert "no write calls needed" in out
    assert "exists on pve1 (stopped) and matches the inventory: nothing to write" in out
    assert "done:" not in out
    assert [c for c in pve_sim.sent[before:] if c[0] != "GET"] == []


def test_create_vm_start_and_iso_reuse(pve_sim: PveSim, capsys: pytest.CaptureFixture[str]) -> None:
    pve_sim.pve.store_file("local", ISO.split("/", 1)[1], 100 * 1024**2)
    out = run(vm_tasks.create_vm, capsys, node=96, start=True, json=True)
    result = json.loads(out)
    assert [s["path"] for s in result["steps"]] == [
        "/nodes/pve1/qemu",
        "/nodes/pve1/qemu/196/status/start",
    ]
    assert f"{ISO} is already on pve1: not downloading it" in result["notes"]
    assert pve_sim.pve.vm(196).status == "running"


def test_create_vm_refuses_a_vmid_taken_by_another_guest(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, name="someone-else")
    with pytest.raises(Exit) as err:
        run(vm_tasks.create_vm, capsys, node=96)
    assert err.value.code == 4
    assert "vmid 196 on pve1 holds qemu 'someone-else', not the VM 'domum-cp3'" in str(
        err.value.message
    )


def test_create_vm_rejects_a_node_that_is_no_vm(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exit) as err:
        run(vm_tasks.create_vm, capsys, node=92, dry_run=True)
    assert err.value.code == 2
    assert "--node 92: domum-xr2 runs on rpi5, not a proxmox-vm" in str(err.value.message)


def _unreachable_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, factory: str) -> None:
    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["proxmox"]["pve1"]["api_url"] = "https://127.0.0.10:9"  # nothing listens there
    data["cluster"]["image_factory"] = factory  # registering the ISO's schematic works
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DOMUM_INVENTORY", str(tmp_path / "inv.yaml"))
    monkeypatch.setenv("DOMUM_PROXMOX_PVE1_TOKEN_SECRET", "not-used")


def test_dry_run_without_api_plans_for_a_fresh_host(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    image_factory: Any,
) -> None:
    _unreachable_inventory(tmp_path, monkeypatch, image_factory.url)
    out = run(vm_tasks.create_vm, capsys, node=96, dry_run=True)
    assert "cannot reach https://127.0.0.10:9" in out
    assert "planned as for a fresh host: no VM, no Talos ISO yet" in out
    assert "pve POST /nodes/pve1/qemu vmid=196" in out
    # Outside a dry-run an unreachable API is an error, not an assumption.
    with pytest.raises(Exit) as err:
        run(vm_tasks.create_vm, capsys, node=96)
    assert err.value.code == 1 and "cannot reach" in str(err.value.message)


def test_destroy_needs_yes_and_refuses_running(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    with pytest.raises(Exit) as err:
        run(vm_tasks.destroy_vm, capsys, node=96)
    assert err.value.code == 4 and "is running" in str(err.value.message)
    assert "--stop" in str(err.value.message)

    # --stop without --yes: shows what it touches, then refuses (no terminal to confirm on).
    with pytest.raises(Exit) as err:
        run(vm_tasks.destroy_vm, capsys, node=96, stop=True)
    assert err.value.code == 4 and "pass --yes" in str(err.value.message)
    shown = capsys.readouterr().err
    assert "!! pve DELETE /nodes/pve1/qemu/196" in shown
    assert pve_sim.pve.vm(196) is not None and pve_sim.pve.vm(196).status == "running"

    steps = dry_json(vm_tasks.destroy_vm, capsys, node=96, stop=True)
    assert [(s["method"], s.get("destructive")) for s in steps] == [
        ("POST", True),
        ("DELETE", True),
    ]
    assert steps[1]["params"] == {"purge": 1, "destroy-unreferenced-disks": 1}

    out = run(vm_tasks.destroy_vm, capsys, node=96, stop=True, yes=True)
    assert "done: destroy VM 196 (domum-cp3, node 96) and its disks" in out
    assert pve_sim.pve.vm(196) is None
    out = run(vm_tasks.destroy_vm, capsys, node=96, yes=True)
    assert "does not exist on pve1: nothing to destroy" in out


def test_destroy_never_touches_a_foreign_guest(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, name="important-db")
    with pytest.raises(Exit) as err:
        run(vm_tasks.destroy_vm, capsys, node=96, yes=True)
    assert err.value.code == 4
    assert pve_sim.pve.vm(196) is not None


def test_snapshot_once_per_name(pve_sim: PveSim, capsys: pytest.CaptureFixture[str]) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    run(snapshot_tasks.snapshot, capsys, node=96, name="pre-upgrade")
    assert list(pve_sim.pve.vm(196).snapshots) == ["pre-upgrade"]
    out = run(snapshot_tasks.snapshot, capsys, node=96, name="pre-upgrade")
    assert "already has a snapshot named 'pre-upgrade': nothing to do" in out
    with pytest.raises(Exit) as err:
        run(snapshot_tasks.snapshot, capsys, node=96, name="x")
    assert err.value.code == 2 and "--name 'x'" in str(err.value.message)


def test_snapshot_of_a_missing_vm_fails(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Exit) as err:
        run(snapshot_tasks.snapshot, capsys, node=96, name="pre-upgrade")
    assert err.value.code == 1
    assert "does not exist on pve1: nothing to snapshot" in str(err.value.message)


def test_status_hosts_guests_storage_missing(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.pve.add_vm(150, "plex", node="pve1", status="running", config={"memory": "2048"})
    pve_sim.pve.add_ct(110, "pihole", node="pve1", status="running")
    report = json.loads(run(status_tasks.status, capsys, json=True))
    assert set(report) == {"hosts", "guests", "storage", "missing"}
    [host] = report["hosts"]
    assert (host["host"], host["node"], host["status"]) == ("pve1", "pve1", "online")
    assert host["mem_total_gib"] == 8.0 and host["uptime_s"] == 3600
    guests = {g["vmid"]: g for g in report["guests"]}
    assert (guests[110]["type"], guests[110]["inventory"]) == ("lxc", "not in inventory")
    assert (guests[150]["type"], guests[150]["mem_total_gib"]) == ("qemu", 2.0)
    assert {s["storage"] for s in report["storage"]} >= {"local", "local-lvm", "nas-backup"}
    assert report["missing"] == [
        {"guest": "node 96", "type": "qemu", "vmid": 196, "hostname": "domum-cp3",
         "host": "pve1", "fix": "inv proxmox.create-vm --node 96"},
        {"guest": "container unifi", "type": "lxc", "vmid": 210, "hostname": "domum-unifi",
         "host": "pve1", "fix": "inv proxmox.restore --node unifi --from VOLID"},
        {"guest": "container mqtt", "type": "lxc", "vmid": 211, "hostname": "domum-mqtt",
         "host": "pve1", "fix": "inv proxmox.restore --node mqtt --from VOLID"},
    ]  # fmt: skip
    assert all(k == k.lower() and " " not in k for row in report["guests"] for k in row)

    pve_sim.add_inventory_vm(96)
    pve_sim.pve.add_ct(210, "domum-unifi", node="pve1", status="running")
    pve_sim.pve.add_ct(211, "mqtt-old", node="pve1")
    report = json.loads(run(status_tasks.status, capsys, json=True))
    assert report["missing"] == []
    marks = {g["vmid"]: g["inventory"] for g in report["guests"]}
    assert (marks[196], marks[210]) == ("node 96", "container unifi")
    assert marks[211] == "container mqtt (expects domum-mqtt)"
    text = run(status_tasks.status, capsys)
    for title in ("Proxmox hosts", "Guests", "Storage"):
        assert title in text


def test_status_is_one_call_whatever_the_guest_count(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    run(status_tasks.status, capsys, json=True)
    few = len(pve_sim.sent)
    for i in range(100):
        pve_sim.pve.add_vm(1000 + i, f"guest{i}", node="pve1")
    pve_sim.sent.clear()
    run(status_tasks.status, capsys, json=True)
    assert len(pve_sim.sent) == few == 1


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("no-secret", "no API token secret"),
        ("bad-token", "token rejected"),
        ("unreachable", "unreachable"),
        ("tls", "TLS verification failed: pin the CA with ca_file or the fingerprint"),
    ],
)
def test_status_says_why_a_host_is_down_and_exits_1(
    pve_sim: PveSim,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    breakage: str,
    reason: str,
) -> None:
    data = yaml.safe_load(pve_sim.inventory_path.read_text())
    if breakage == "no-secret":
        monkeypatch.delenv("DOMUM_PROXMOX_PVE1_TOKEN_SECRET")
        monkeypatch.setenv("DOMUM_SECRETS_FILE", str(tmp_path / "absent.yaml"))
    elif breakage == "bad-token":
        monkeypatch.setenv("DOMUM_PROXMOX_PVE1_TOKEN_SECRET", "wrong")
    elif breakage == "unreachable":
        data["proxmox"]["pve1"]["api_url"] = "https://127.0.0.10:9"
    else:
        from fakepve.certs import make_cert

        data["proxmox"]["pve1"]["ca_file"] = make_cert(str(tmp_path), name="other",
                                                       hosts=("127.0.0.10",))[0]  # fmt: skip
    pve_sim.inventory_path.write_text(yaml.safe_dump(data))
    with pytest.raises(Exit) as err:
        status_tasks.status(Context(), json=True)
    assert err.value.code == 1
    assert f"pve1: {reason}" in str(err.value.message)
    report = json.loads(capsys.readouterr().out)  # printed before the exit: the same reason
    [host] = report["hosts"]
    assert host["status"] == "down" and host["reason"].startswith(reason)
    assert report["missing"] == []  # a down host's VMs are not "missing"


def test_status_help_has_no_dry_run() -> None:
    from domum_tasks.proxmox.tasks import ns

    task = ns.tasks["status"]
    assert "dry_run" not in task.help and "dry-run" not in (task.__doc__ or "")
    # (not task.get_arguments(): invoke pops the help entries it uses)
    assert list(inspect.signature(task.body).parameters)[1:] == ["json"]


def test_cli_error_is_one_line_without_traceback(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "proxmox.destroy-vm", "--node", "96", "--yes"],
        cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 4
    assert proc.stderr.strip().splitlines() == [
        "domum: VM 196 (domum-cp3, node 96) is running",
        "  hint: pass --stop to stop it first",
    ]


# --- contract ---------------------------------------------------------------------------------


def _planned_calls() -> list[dict[str, Any]]:
    """Every PveCall the planners produce for the loopback inventory, in each state they handle."""
    from domum_tasks.inventory import loader as inventory
    from domum_tasks.proxmox import vzdump
    from domum_tasks.proxmox.facts import ConfigValue, VmFacts, VmInfo
    from domum_tasks.proxmox.power import actions as power
    from domum_tasks.proxmox.snapshots import plan as snapshots
    from domum_tasks.proxmox.vm import create, destroy

    inv = inventory.load(LOOPBACK_INVENTORY)
    fresh = VmFacts("pve1")
    down = VmFacts("pve1", reachable=False, reason="test")
    stopped = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "stopped"))
    running = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "running"),
                      snapshots=[{"name": "pre-upgrade"}])  # fmt: skip
    drifted = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "running"), config={
        "cores": ConfigValue("1"), "tags": ConfigValue("x"),
        "scsi0": ConfigValue("local-lvm:vm-196-disk-0,iothread=1,size=32G"),
        "net0": ConfigValue("e1000=BC:24:11:10:00:01,bridge=vmbr9"),
        "ide2": ConfigValue("none,media=cdrom"), "balloon": ConfigValue(None),
    })  # fmt: skip
    doomed = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "stopped"),
                     config={"scsi0": ConfigValue("other:vm-196-disk-0,size=80G")})  # fmt: skip
    plans = [
        create.plan_create_vm(inv, 96, fresh, start=True).plan,
        create.plan_create_vm(inv, 96, down).plan,
        create.plan_create_vm(inv, 96, stopped, start=True).plan,
        create.plan_create_vm(inv, 96, drifted, apply_drift=True).plan,
        create.plan_create_vm(inv, 96, doomed, apply_drift=True, force=True).plan,
        *(power.plan_power(inv, 96, running, a) for a in ("stop", "shutdown", "reboot")),
        power.plan_power(inv, 96, running, "shutdown", force_after=30),
        power.plan_power(inv, 96, stopped, "start"),
        snapshots.plan_snapshot(inv, 96, running, "pre-upgrade2", vmstate=True),
        snapshots.plan_snapshot(inv, 96, down, "pre-upgrade"),
        snapshots.plan_rollback(inv, 96, running, "pre-upgrade"),
        snapshots.plan_snapshot_delete(inv, 96, running, "pre-upgrade"),
        destroy.plan_destroy_vm(inv, 96, vm=running.vm, stop=True),
        destroy.plan_destroy_vm(inv, 96, vm=None, reachable=False),
        vzdump.plan_vzdump(inv, [196, 150], prune={"keep_daily": 7, "keep_weekly": 4}),
    ]
    steps = [s for p in plans for s in json.loads(p.to_json())]
    return [s for s in steps if s["kind"] == "pve"]


@pytest.mark.skipif(not CONTRACTS.is_dir(), reason="../shared/contracts is absent")
def test_planned_and_probed_calls_pass_the_pve_contract(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    planned = _planned_calls()
    assert len(planned) >= 20
    # The probes and executed calls of a real run, as domum_tasks.pve sent them.
    run(vm_tasks.create_vm, capsys, node=96, start=True)
    run(snapshot_tasks.snapshot, capsys, node=96, name="pre-upgrade")
    run(power_tasks.reboot, capsys, node=96)
    run(vm_tasks.destroy_vm, capsys, node=96, stop=True, yes=True)
    run(status_tasks.status, capsys, json=True)
    calls = [{k: s[k] for k in ("method", "path", "params")} for s in planned] + pve_sim.calls()
    assert not any(isinstance(v, bool) for c in calls for v in c["params"].values())
    (tmp_path / "calls.json").write_text(json.dumps(calls))
    proc = subprocess.run(
        [sys.executable, str(CONTRACTS / "check_pve_calls.py"), str(tmp_path / "calls.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(calls)} calls, 0 with errors" in proc.stdout
