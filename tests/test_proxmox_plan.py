"""Pure planners of the proxmox namespace: inventory + facts in, steps out (no server)."""

from __future__ import annotations

import pytest

from domum_tasks.errors import ConfigError, LockHeld, Refused
from domum_tasks.inventory import loader as inventory
from domum_tasks.plan import Local, PveCall, Wait
from domum_tasks.proxmox import permissions, target
from domum_tasks.proxmox.facts import (
    ConfigValue,
    VmFacts,
    VmInfo,
    parse_cluster,
    parse_pending,
    parse_resources,
    parse_snapshots,
)
from domum_tasks.proxmox.power import actions as power
from domum_tasks.proxmox.snapshots import plan as snapshots
from domum_tasks.proxmox.vm import create, destroy, drift
from domum_tasks.pve import VM_STATE
from tests.conftest import LOOPBACK_INVENTORY

QGA_ID = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"


@pytest.fixture
def inv():  # type: ignore[no-untyped-def]
    return inventory.load(LOOPBACK_INVENTORY)


def test_talos_vm_config_follows_the_talos_proxmox_guide(inv) -> None:  # type: ignore[no-untyped-def]
    cfg = target.vm_config(inv, target.vm_target(inv, 96))
    assert cfg == {
        "vmid": 196,
        "name": "domum-cp3",
        "memory": 4096,
        "balloon": 0,
        "cores": 2,
        "sockets": 1,
        "cpu": "host",
        "bios": "ovmf",
        "efidisk0": "local-lvm:1,efitype=4m,pre-enrolled-keys=0",
        "machine": "q35",
        "scsihw": "virtio-scsi-pci",
        "scsi0": "local-lvm:40,cache=writethrough,discard=on,ssd=1",
        "net0": "virtio=BC:24:11:10:00:96,bridge=vmbr0",
        "agent": "enabled=1",
        "ostype": "l26",
        "ide2": "local:iso/talos-v1.13.9-ce4c9805.iso,media=cdrom",
        "boot": "order=scsi0;ide2;net0",
        "onboot": 1,
        "serial0": "socket",
        "tags": "domum;talos;controlplane",
        "description": "Domum node 96 (controlplane); managed by inv proxmox.create-vm",
    }


def test_vlan_goes_on_net0(inv) -> None:  # type: ignore[no-untyped-def]
    node = inv.nodes[96]
    tagged = node.model_copy(update={"vm": node.vm.model_copy(update={"vlan": 30})})
    other = inv.model_copy(update={"nodes": {**inv.nodes, 96: tagged}})
    assert (
        target.net0(target.vm_target(other, 96)) == "virtio=BC:24:11:10:00:96,bridge=vmbr0,tag=30"
    )


def test_iso_comes_from_the_pinned_version_and_schematic(inv) -> None:  # type: ignore[no-untyped-def]
    iso = target.talos_iso(inv, target.vm_target(inv, 96))
    # the loopback inventory's factory (tests/data/loopback.yaml: nothing listens there)
    assert iso.url == f"http://127.0.0.1:9/image/{QGA_ID}/v1.13.9/metal-amd64.iso"
    assert (iso.storage, iso.filename) == ("local", "talos-v1.13.9-ce4c9805.iso")


def test_iso_checksum_is_verified_when_known(inv) -> None:  # type: ignore[no-untyped-def]
    node = inv.nodes[96]
    pinned = node.model_copy(update={"vm": node.vm.model_copy(update={"iso_sha256": "ab" * 32})})
    other = inv.model_copy(update={"nodes": {**inv.nodes, 96: pinned}})
    call = create.iso_call(other, target.vm_target(other, 96))
    assert call.params["checksum"] == "ab" * 32 and call.params["checksum-algorithm"] == "sha256"
    assert "checksum" not in create.iso_call(inv, target.vm_target(inv, 96)).params


def test_create_plan_when_the_iso_is_there(inv) -> None:  # type: ignore[no-untyped-def]
    p = create.plan_create_vm(inv, 96, VmFacts("pve1", iso_present=True), start=True).plan
    assert [(s.method, s.path) for s in p.steps if isinstance(s, PveCall)] == [
        ("POST", "/nodes/pve1/qemu"),
        ("POST", "/nodes/pve1/qemu/196/status/start"),
    ]
    assert all(isinstance(s, PveCall) and s.wait_task for s in p.steps)
    assert not p.destructive


def test_node_or_all(inv) -> None:  # type: ignore[no-untyped-def]
    assert target.node_ids(inv, 0, True) == target.vm_node_ids(inv) == [96]
    assert target.node_ids(inv, 96, False) == [96]
    with pytest.raises(ConfigError, match="give --node N or --all"):
        target.node_ids(inv, 0, False)


# --- drift ------------------------------------------------------------------------------------


def stored(inv, **changes: str | None) -> dict[str, ConfigValue]:  # type: ignore[no-untyped-def]
    """The config as PVE stores a VM create-vm made (normalised), with changes."""
    cfg = {k: str(v) for k, v in target.vm_config(inv, target.vm_target(inv, 96)).items()}
    cfg.pop("vmid")
    cfg |= {"scsi0": "local-lvm:vm-196-disk-0,cache=writethrough,discard=on,size=40G,ssd=1",
            "efidisk0": "local-lvm:vm-196-disk-1,efitype=4m,pre-enrolled-keys=0,size=528K",
            "machine": "pc-q35-10.0+pve1", "memory": "4096",
            "tags": "controlplane;domum;talos", "meta": "creation-qemu=10.0.2", "digest": "x"}  # fmt: skip
    for k, v in changes.items():
        if v is None:
            cfg.pop(k)
        else:
            cfg[k] = v
    return {k: ConfigValue(v) for k, v in cfg.items()}


def diff(inv, running: bool = True, **changes: str | None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    desired = target.vm_config(inv, target.vm_target(inv, 96))
    found, _ = drift.compare(desired, stored(inv, **changes), running=running)
    return {d.key: d.cls for d in found}


def test_pve_normalised_values_are_no_drift(inv) -> None:  # type: ignore[no-untyped-def]
    assert diff(inv) == {}
    assert diff(inv, net0="virtio=bc:24:11:10:00:96,bridge=vmbr0,firewall=0") == {}
    assert diff(inv, cpu="cputype=host", memory="current=4096", agent="1") == {}
    assert diff(inv, sockets=None) == {}  # PVE's default is 1


DISK = "local-lvm:vm-196-disk-0,cache=writethrough,discard=on"  # + size=, ssd=1


def test_each_drift_class(inv) -> None:  # type: ignore[no-untyped-def]
    """The running VM's classes as qemu-server applies them (vm/hotplug.py has the table)."""
    assert diff(inv, tags="domum;talos") == {"tags": "live"}
    assert diff(inv, ide2="local:iso/old.iso,media=cdrom") == {"ide2": "live"}
    assert diff(inv, ide2=None) == {"ide2": "pending"}  # IDE is never hot-plugged
    assert diff(inv, net0="virtio=BC:24:11:10:00:96,bridge=vmbr1") == {"net0": "live"}
    assert diff(inv, net0="virtio=BC:24:11:10:00:99,bridge=vmbr0") == {"net0": "live"}
    assert diff(inv, net0="e1000=BC:24:11:10:00:96,bridge=vmbr0") == {"net0": "live"}
    assert diff(inv, cores="4", memory="2048", balloon=None) == {
        "cores": "pending", "memory": "pending", "balloon": "pending",
    }  # fmt: skip
    assert diff(inv, scsihw="virtio-scsi-single") == {"scsihw": "pending"}
    assert diff(inv, scsi0=f"{DISK},size=32G,ssd=1") == {"scsi0": "live"}
    assert diff(inv, scsi0="local-lvm:vm-196-disk-0,discard=on,size=40G,ssd=1") == {
        "scsi0": "pending"  # cache= is not hot-pluggable
    }
    assert diff(inv, scsi0=f"{DISK},size=64G,ssd=1") == {"scsi0": "destroys-data"}
    assert diff(inv, scsi0="fast:vm-196-disk-0,cache=writethrough,discard=on,size=40G,ssd=1") == {
        "scsi0": "destroys-data"
    }
    assert diff(inv, bios=None, machine=None, efidisk0=None) == {
        "bios": "pending", "machine": "pending", "efidisk0": "pending",
    }  # fmt: skip
    # A stopped VM takes every change but destroys-data at once.
    assert diff(inv, running=False, cores="4", scsihw="virtio-scsi-single") == {
        "cores": "live", "scsihw": "live",
    }  # fmt: skip


def test_a_change_pve_already_queued_is_not_drift(inv) -> None:  # type: ignore[no-untyped-def]
    config = stored(inv)
    config["cores"] = ConfigValue("1", pending="2")
    desired = target.vm_config(inv, target.vm_target(inv, 96))
    found, queued = drift.compare(desired, config, running=True)
    assert found == [] and queued == ["cores: 2 is queued by PVE and applies at the next restart"]


def running_facts(inv, **changes: str | None) -> VmFacts:  # type: ignore[no-untyped-def]
    vm = VmInfo(196, "domum-cp3", "pve1", "running")
    return VmFacts("pve1", vm=vm, iso_present=True, config=stored(inv, **changes))


def test_drift_is_reported_not_applied_without_apply_drift(inv) -> None:  # type: ignore[no-untyped-def]
    made = create.plan_create_vm(inv, 96, running_facts(inv, cores="4"))
    assert made.plan.steps == [] and [d.key for d in made.drift] == ["cores"]
    assert "not changed (pass --apply-drift)" in made.plan.notes[-1]


def test_apply_drift_one_config_call_and_a_resize(inv) -> None:  # type: ignore[no-untyped-def]
    facts = running_facts(inv, cores="4", tags="x", scsi0=f"{DISK},size=32G,ssd=1")
    made = create.plan_create_vm(inv, 96, facts, apply_drift=True)
    resize, config = made.plan.steps
    assert isinstance(resize, PveCall) and isinstance(config, PveCall)
    assert (resize.method, resize.path, dict(resize.params)) == (
        "PUT", "/nodes/pve1/qemu/196/resize", {"disk": "scsi0", "size": "40G"},
    )  # fmt: skip
    assert config.path == "/nodes/pve1/qemu/196/config"
    assert dict(config.params) == {"cores": "2", "tags": "domum;talos;controlplane"}
    assert made.refused == []


def test_disk_option_change_keeps_the_volume(inv) -> None:  # type: ignore[no-untyped-def]
    facts = running_facts(inv, scsi0="local-lvm:vm-196-disk-0,iothread=1,size=40G,ssd=1")
    [config] = create.plan_create_vm(inv, 96, facts, apply_drift=True).plan.steps
    assert isinstance(config, PveCall)
    assert config.params == {"scsi0": f"{DISK},size=40G,ssd=1"}


def test_destroys_data_is_refused_unless_force(inv) -> None:  # type: ignore[no-untyped-def]
    facts = running_facts(inv, cores="4", scsi0="fast:vm-196-disk-0,cache=writethrough,size=40G")
    made = create.plan_create_vm(inv, 96, facts, apply_drift=True)
    assert [s.params for s in made.plan.steps if isinstance(s, PveCall)] == [{"cores": "2"}]
    assert made.refused == [
        "scsi0: the disk is on fast, not local-lvm: Domum would recreate it empty (or move it "
        "yourself: Move Disk in the PVE GUI keeps the data) (pass --force to recreate the VM)"
    ]
    # --force on a running VM still refuses: it must be stopped first.
    forced = create.plan_create_vm(inv, 96, facts, apply_drift=True, force=True)
    assert forced.plan.steps == [] and "stop the VM first" in forced.refused[0]
    stopped = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "stopped"),
                      iso_present=True, config=facts.config)  # fmt: skip
    again = create.plan_create_vm(inv, 96, stopped, apply_drift=True, force=True).plan
    assert [(s.method, s.path) for s in again.steps if isinstance(s, PveCall)] == [
        ("DELETE", "/nodes/pve1/qemu/196"),
        ("POST", "/nodes/pve1/qemu"),
    ]
    assert again.destructive


def test_needs_stop_is_refused_while_running(inv) -> None:  # type: ignore[no-untyped-def]
    made = create.plan_create_vm(inv, 96, running_facts(inv, ide2="local-lvm:vm-196-disk-2"),
                                 apply_drift=True)  # fmt: skip
    assert made.plan.steps == []
    assert made.refused == [
        "ide2: PVE cannot change a drive's media type on a running VM "
        "(inv proxmox.shutdown --node 96)"
    ]


# --- power, snapshots, destroy -----------------------------------------------------------------


def test_power_plans_wait_for_task_then_state(inv) -> None:  # type: ignore[no-untyped-def]
    facts = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "running"))
    p = power.plan_power(inv, 96, facts, "shutdown", force_after=30)
    call, wait = p.steps
    assert isinstance(call, PveCall) and isinstance(wait, Wait)
    assert call.path == "/nodes/pve1/qemu/196/status/shutdown"
    assert call.params == {"timeout": 30, "forceStop": 1} and not call.destructive
    assert isinstance(wait.probe, Local) and wait.probe.action == VM_STATE
    assert wait.probe.args == {"path": "/nodes/pve1/qemu/196/status/current", "want": "stopped"}
    assert power.plan_power(inv, 96, facts, "start").steps == []
    assert power.plan_power(inv, 96, facts, "stop").destructive
    stopped = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "stopped"))
    with pytest.raises(Refused, match="nothing to reboot"):
        power.plan_power(inv, 96, stopped, "reboot")
    with pytest.raises(ConfigError, match="--force-after"):
        power.plan_power(inv, 96, facts, "stop", force_after=5)


def test_locked_vm_names_lock_and_holder(inv) -> None:  # type: ignore[no-untyped-def]
    vm = VmInfo(196, "domum-cp3", "pve1", "running", lock="backup")
    facts = VmFacts("pve1", vm=vm, lock_holders=["vzdump (UPID:pve1:1)"])
    with pytest.raises(LockHeld, match=r"locked \(backup\); running: vzdump \(UPID:pve1:1\)"):
        power.plan_power(inv, 96, facts, "shutdown")


@pytest.mark.parametrize(
    ("name", "ok"),
    [("pre-upgrade", True), ("a1", True), ("x", False), ("1abc", False), ("has space", False),
     ("a" * 40, True), ("a" * 41, False), ("current", False), ("with.dot", False)],
)  # fmt: skip
def test_snapshot_names(name: str, ok: bool) -> None:
    if ok:
        assert snapshots.check_snapname(name) == name
    else:
        with pytest.raises(ConfigError, match="--name"):
            snapshots.check_snapname(name)


def test_rollback_says_what_is_lost(inv) -> None:  # type: ignore[no-untyped-def]
    snaps = [{"name": "a1", "snaptime": 1764547200}, {"name": "b2", "snaptime": 1764633600}]
    facts = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "running"), snapshots=snaps)
    p = snapshots.plan_rollback(inv, 96, facts, "a1")
    assert p.destructive
    assert p.notes[0] == (
        "rolling back loses everything VM 196 (domum-cp3, node 96) wrote since "
        "2025-12-01 00:00 UTC (its RAM state too: it was running); newer snapshots stay: b2"
    )
    with pytest.raises(Refused, match="has no snapshot 'zz'; it has: a1, b2"):
        snapshots.plan_rollback(inv, 96, facts, "zz")
    assert snapshots.plan_snapshot_delete(inv, 96, facts, "zz").steps == []


def test_destroy_plans(inv) -> None:  # type: ignore[no-untyped-def]
    stopped = VmInfo(196, "domum-cp3", "pve1", "stopped")
    [delete] = destroy.plan_destroy_vm(inv, 96, vm=stopped).steps
    assert isinstance(delete, PveCall) and delete.destructive and delete.method == "DELETE"
    with pytest.raises(Refused, match="is running"):
        destroy.plan_destroy_vm(inv, 96, vm=VmInfo(196, "domum-cp3", "pve1", "running"))
    with pytest.raises(Refused, match="holds lxc"):
        destroy.plan_destroy_vm(inv, 96, vm=VmInfo(196, "domum-cp3", "pve1", "stopped", "lxc"))
    down = destroy.plan_destroy_vm(inv, 96, vm=None, reachable=False, reason="timeout")
    assert "could not ask Proxmox host pve1 (timeout)" in down.notes[0]
    other = VmInfo(150, "plex", "pve1", "stopped")
    with pytest.raises(Refused, match="vmid 150 is not an inventory VM"):
        destroy.plan_destroy_vmid(inv, 150, other)
    [forced] = destroy.plan_destroy_vmid(inv, 150, other, force=True).steps
    assert isinstance(forced, PveCall) and forced.path == "/nodes/pve1/qemu/150"


# --- permissions -----------------------------------------------------------------------------


def test_permission_needs_and_tree() -> None:
    call = PveCall("POST", "/nodes/pve1/vzdump",
                   {"vmid": "196", "storage": "nas", "prune-backups": "keep-daily=7"})  # fmt: skip
    needs = permissions.needs_for(call)
    assert permissions.paths(needs) == ["/storage/nas", "/vms/196"]
    held = {"/vms/196": {"VM.Backup": 1}, "/storage/nas": {"Datastore.AllocateSpace": 1}}
    assert permissions.missing(held, needs) == ["Datastore.Allocate on /storage/nas"]
    held["/storage/nas"]["Datastore.Allocate"] = 0  # held there, whatever its propagate flag
    assert permissions.missing(held, needs) == []
    # Only PVE's answer for the exact path counts: Domum never reads a parent's grant.
    assert permissions.missing({"/vms": {"VM.Backup": 1}}, needs[:1]) == ["VM.Backup on /vms/196"]
    download = PveCall("POST", "/nodes/pve1/storage/local/download-url", {})
    assert permissions.missing({"/storage/local": {"Datastore.AllocateTemplate": 1}},
                               permissions.needs_for(download)) == [
        "Sys.Audit on / + Sys.Modify on / or Sys.AccessNetwork on /nodes/pve1"
    ]  # fmt: skip


# --- parsers --------------------------------------------------------------------------------


def test_parsers() -> None:
    resources = [
        {"id": "qemu/196", "type": "qemu", "vmid": 196, "name": "domum-cp3", "node": "pve1",
         "status": "running", "maxmem": 4294967296, "uptime": 60},
        {"id": "lxc/110", "type": "lxc", "vmid": "110", "name": "pihole", "node": "pve1",
         "status": "stopped", "template": 0},
        {"id": "storage/pve1/local", "type": "storage", "node": "pve1", "storage": "local",
         "disk": 1, "maxdisk": 4, "status": "available"},
        {"id": "node/pve1", "type": "node", "node": "pve1", "status": "online", "cpu": 0.5},
    ]  # fmt: skip
    assert [(v.vmid, v.kind) for v in parse_resources(resources)] == [(110, "lxc"), (196, "qemu")]
    parsed = parse_cluster(resources)
    assert [h.node for h in parsed.hosts] == ["pve1"] and parsed.storages[0].total == 4
    snaps = [
        {"name": "b", "snaptime": 2},
        {"name": "current", "running": 1},
        {"name": "a", "snaptime": 1},
    ]
    assert [s["name"] for s in parse_snapshots(snaps)] == ["a", "b"]
    pending = parse_pending([{"key": "cores", "value": 1, "pending": 2},
                             {"key": "tags", "value": "x", "delete": 1}, {"key": "digest"}])  # fmt: skip
    assert pending["cores"].next == "2" and pending["tags"].next is None and "digest" not in pending
