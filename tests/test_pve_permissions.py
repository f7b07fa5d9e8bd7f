"""Domum's privilege pre-check against a fakepve that decides permissions as PVE does.

The fixture (tests/fixtures/pve_acl_fake.py) answers GET /access/permissions and its 403s by
PVE's rules from a user.cfg. Each scenario checks both sides: the pre-check refuses with zero
writes, and the same call made anyway gets PVE's 403 (so the pre-check is not stricter or
looser than PVE). Our own cases, derived from pve-access-control's SEMANTICS (a more specific
ACL replaces, NoAccess removes the path, a privsep token holds the intersection, pool members'
paths carry the pool's roles), also run on a clone without ../shared.
"""

from __future__ import annotations

from typing import Any

import pytest
from invoke import Context, Exit

from domum_tasks import pve
from domum_tasks.errors import PveError
from domum_tasks.proxmox.power import tasks as power_tasks
from domum_tasks.proxmox.vm import tasks as vm_tasks
from tests.fixtures.pve_acl import AclConfig
from tests.fixtures.pve_acl_fake import load
from tests.fixtures.pve_sim import PveSim
from tests.fixtures.pve_task_status import end_with_warnings

pytestmark = pytest.mark.integration

TOKEN = "domum@pve!automation"
HEAD = "user:domum@pve:1:\ntoken:domum@pve!automation::1:\n"
BOTH = "domum@pve,domum@pve!automation"
ISO = "talos-v1.13.9-ce4c9805.iso"


def refused(task: Any, capsys: pytest.CaptureFixture[str], **kwargs: Any) -> str:
    """The task's exit 4 (refused): its message, with the hint."""
    with pytest.raises(Exit) as err:
        task(Context(), **kwargs)
    capsys.readouterr()
    assert err.value.code == 4, err.value.message
    return str(err.value.message)


def forbidden(sim: PveSim, method: str, path: str, params: dict[str, Any]) -> str:
    """The call made anyway, past the pre-check: PVE's 403."""
    client = pve.client(sim.inventory(), "pve1")
    with pytest.raises(PveError) as err:
        client.call(method, path, params)
    assert ": 403 Permission check failed" in err.value.message
    return err.value.message


# --- our own cases of PVE's rules (no ../shared needed) ----------------------------------------


def test_pve_rules_on_a_small_config() -> None:
    cfg = AclConfig.parse(
        HEAD + "user:ops@pve:1:\ngroup:admins:ops@pve:\n"
        "acl:1:/:@admins:PVEAdmin:\nacl:1:/vms/196:ops@pve:PVEAuditor:\n"
        f"acl:1:/vms:{BOTH}:PVEVMAdmin:\nacl:1:/vms/197:domum@pve:NoAccess:\n"
        "acl:0:/storage:domum@pve:PVEDatastoreUser:\n"
        "pool:talos::198:local-lvm:\nacl:1:/pool/talos:domum@pve!automation:PVEAuditor:\n"
    )
    # A user ACL on the VM replaces the group's PVEAdmin inherited from / (not a union).
    assert set(cfg.permissions("ops@pve", "/vms/196")) == {"VM.Audit", "VM.GuestAgent.Audit",
        "Datastore.Audit", "Mapping.Audit", "Pool.Audit", "SDN.Audit", "Sys.Audit"}  # fmt: skip
    # NoAccess for the user: the privsep token holds nothing there either, and the path
    # vanishes from the listing.
    assert cfg.permissions(TOKEN, "/vms/197") == {}
    assert "/vms/197" not in cfg.effective(TOKEN) and "/vms" in cfg.effective(TOKEN)
    # propagate=0: on /storage only, not below.
    assert "Datastore.AllocateSpace" in cfg.permissions("domum@pve", "/storage")
    assert cfg.permissions("domum@pve", "/storage/local-lvm") == {}
    # A pool's roles go to its members' exact paths, for the token through its own pool ACL,
    # and only what the user also holds there (the user has no pool ACL, but /vms).
    assert cfg.permissions(TOKEN, "/vms/198")["VM.Audit"] == 1
    assert "Datastore.Audit" not in cfg.permissions(TOKEN, "/storage/local-lvm")


def test_more_specific_acl_replaces_the_inherited_one(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, status="stopped")
    load(pve_sim.pve, HEAD + f"acl:1:/vms:{BOTH}:PVEVMAdmin:\n"
         f"acl:1:/vms/196:{TOKEN}:PVEAuditor:\n")  # fmt: skip
    # The listing still shows VM.PowerMgmt on /vms, propagated: a parent walk said "held".
    listing = pve.client(pve_sim.inventory(), "pve1").get("/access/permissions")
    assert listing["/vms"]["VM.PowerMgmt"] == 1
    text = refused(power_tasks.start, capsys, node=96)
    assert "VM.PowerMgmt on /vms/196" in text and "nothing was changed" in text
    assert pve_sim.writes() == []
    forbidden(pve_sim, "POST", "/nodes/pve1/qemu/196/status/start", {})


def test_privsep_token_holds_the_intersection_and_the_hint_says_both(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, status="stopped")
    # The token got PVEVMAdmin (as the old hint said); its user only audits.
    load(pve_sim.pve, HEAD + f"acl:1:/vms:{TOKEN}:PVEVMAdmin:\nacl:1:/:domum@pve:PVEAuditor:\n")
    text = refused(power_tasks.start, capsys, node=96)
    assert "VM.PowerMgmt on /vms/196" in text
    assert pve_sim.writes() == []
    forbidden(pve_sim, "POST", "/nodes/pve1/qemu/196/status/start", {})
    assert (
        "hint: a privilege-separated token holds only what BOTH the token and its user "
        "domum@pve hold: grant the roles to both" in text
    )


def test_privileges_through_a_pool_are_seen(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, status="stopped")
    load(pve_sim.pve, HEAD + "pool:talos::196::\n" + f"acl:1:/pool/talos:{BOTH}:PVEVMUser:\n")
    power_tasks.start(Context(), node=96)
    assert pve_sim.pve.vm(196).status == "running"


CREATE_CFG = HEAD + "\n".join(
    f"acl:1:{path}:{BOTH}:{role}:"
    for path, role in [("/", "PVEAuditor"), ("/storage/local", "PVEDatastoreAdmin"),
                       ("/storage/local-lvm", "PVEDatastoreUser"),
                       ("/sdn/zones/localnetwork", "PVESDNUser")]
) + "\nrole:maker:VM.Allocate,VM.Config.CPU,VM.Config.Memory,VM.Config.Options,VM.Config.HWType," \
    "VM.Config.Network,VM.Config.Disk,VM.PowerMgmt:\n"  # fmt: skip
# (VM.Config.Disk: for `boot`, a disk option; no VM.Config.CDROM: create does not check it.)


def test_create_checks_the_storages_not_the_drive_privileges(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    """create_vm checks the disk and the ISO on their storages (qemu-server
    $check_storage_access), not VM.Config.CDROM for the ISO drive: a token without it creates
    the VM."""
    pve_sim.pve.store_file("local", ISO, 1024)
    load(pve_sim.pve, CREATE_CFG + f"acl:1:/vms:{BOTH}:maker:\n")
    vm_tasks.create_vm(Context(), node=96)
    assert pve_sim.pve.vm(196) is not None


def test_no_access_makes_the_path_vanish_and_is_refused(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    """PVEDatastoreUser on /storage, propagated, but NoAccess on /storage/local-lvm for the
    user: the path vanishes from the listing, and the disk cannot be allocated there."""
    pve_sim.pve.store_file("local", ISO, 1024)
    load(pve_sim.pve, CREATE_CFG + f"acl:1:/vms:{BOTH}:maker:\n"
         f"acl:1:/storage:{BOTH}:PVEDatastoreUser:\nacl:1:/storage/local-lvm:domum@pve:NoAccess:\n")  # fmt: skip
    client = pve.client(pve_sim.inventory(), "pve1")
    listing = client.get("/access/permissions")
    assert "/storage/local-lvm" not in listing and listing["/storage"]["Datastore.AllocateSpace"]
    assert client.permissions("/storage/local-lvm") == {}
    text = refused(vm_tasks.create_vm, capsys, node=96)
    assert "Datastore.AllocateSpace on /storage/local-lvm" in text
    assert pve_sim.writes() == []
    forbidden(pve_sim, "POST", "/nodes/pve1/qemu", {"vmid": 196, "scsi0": "local-lvm:8"})


def test_create_without_the_iso_storage_writes_nothing(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without any privilege on the ISO's storage PVE refuses the probe that lists it (as it
    would refuse the create): the run stops there, before any write."""
    from domum_tasks.plan import PveCall
    from domum_tasks.proxmox import permissions

    pve_sim.pve.store_file("local", ISO, 1024)
    cfg = CREATE_CFG.replace("/storage/local:", "/storage/other:") + f"acl:1:/vms:{BOTH}:maker:\n"
    load(pve_sim.pve, cfg.replace("acl:1:/:", "acl:1:/nodes:"))
    with pytest.raises(Exit) as err:
        vm_tasks.create_vm(Context(), node=96)
    assert "403 Permission check failed (/storage/local, Datastore.Audit" in str(err.value.message)
    assert pve_sim.writes() == []
    params = {"vmid": 196, "ide2": f"local:iso/{ISO},media=cdrom", "name": "x"}
    forbidden(pve_sim, "POST", "/nodes/pve1/qemu", params)
    # What the pre-check asks for that drive: PVE::Storage::check_volume_access for an ISO.
    needs = permissions.needs_for(PveCall("POST", "/nodes/pve1/qemu", params))
    assert permissions.missing({}, needs) == [
        "VM.Allocate on /vms/196",
        "Datastore.Allocate on /storage/local or Datastore.AllocateSpace on /storage/local"
        " or Datastore.Audit on /storage/local",
        "VM.Config.Options on /vms/196",
    ]


def test_permission_calls_hold_to_the_contract(pve_sim: PveSim) -> None:
    load(pve_sim.pve, HEAD + f"acl:1:/vms:{BOTH}:PVEVMAdmin:\n")
    client = pve.client(pve_sim.inventory(), "pve1")
    assert "VM.PowerMgmt" in client.permissions("/vms/196")
    assert ("GET", "/access/permissions", {"path": "/vms/196"}) in pve_sim.sent


# --- task warnings ----------------------------------------------------------------------------


def test_start_that_ends_with_warnings_succeeds_and_shows_them(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, status="stopped")
    end_with_warnings(pve_sim.pve, "qmstart", ["machine version 'pc-i440fx-8.0' is deprecated"])
    power_tasks.start(Context(), node=96)
    err = capsys.readouterr().err
    assert pve_sim.pve.vm(196).status == "running"
    assert "task qmstart 196 on pve1 ended WARNINGS: 1" in err
    assert "WARN: machine version 'pc-i440fx-8.0' is deprecated" in err


def test_a_task_error_still_fails(pve_sim: PveSim) -> None:
    vm = pve_sim.add_inventory_vm(96, status="stopped")
    vm.start_error = "WARNINGS: 1 and more"  # not PVE's "WARNINGS: <n>": an error
    client = pve.client(pve_sim.inventory(), "pve1")
    upid = client.call("POST", "/nodes/pve1/qemu/196/status/start", {})
    with pytest.raises(PveError, match="failed: WARNINGS: 1 and more"):
        client.wait_task(upid)


# --- what each call needs (qemu-server's checks) ------------------------------------------------


def test_config_needs_follow_qemu_server() -> None:
    from domum_tasks.plan import PveCall
    from domum_tasks.proxmox import permissions

    def lacking(method: str, path: str, params: dict[str, Any]) -> list[str]:
        return permissions.missing({}, permissions.needs_for(PveCall(method, path, params)))

    base = "/nodes/pve1/qemu/196"
    # Update: the drive's kind decides (CD-ROM vs disk); a new disk also needs its storage.
    assert lacking("POST", f"{base}/config", {"ide2": "local:iso/x.iso,media=cdrom"}) == [
        "VM.Config.CDROM on /vms/196",
        "Datastore.Allocate on /storage/local or Datastore.AllocateSpace on /storage/local"
        " or Datastore.Audit on /storage/local",
    ]
    assert lacking("POST", f"{base}/config", {"scsi1": "local-lvm:4"}) == [
        "VM.Config.Disk on /vms/196",
        "Datastore.AllocateSpace on /storage/local-lvm",
    ]
    # ostype is a general option; startup also needs Sys.Modify on /; args is root's.
    assert lacking(
        "PUT", f"{base}/config", {"ostype": "l26", "startup": "order=1", "args": "-x"}
    ) == [
        "VM.Config.Options on /vms/196",
        "Sys.Modify on /",
        "root@pam only: PUT /nodes/pve1/qemu/196/config (args)",
    ]
    # Create in a pool: the pool's grant is an alternative, except for tags.
    created = lacking("POST", "/nodes/pve1/qemu", {"vmid": 196, "pool": "talos", "memory": 1024,
                                                    "tags": "a", "scsi0": "local-lvm:8"})  # fmt: skip
    assert created == [
        "VM.Allocate on /pool/talos or VM.Allocate on /vms/196",
        "VM.Config.Memory on /pool/talos or VM.Config.Memory on /vms/196",
        "VM.Config.Options on /vms/196",
        "Datastore.AllocateSpace on /storage/local-lvm",
    ]


def test_fixture_checks_options_as_qemu_server(pve_sim: PveSim) -> None:
    """fakepve alone asks VM.Config.HWType for ostype and nothing more for startup; PVE asks
    VM.Config.Options, and Sys.Modify on / for startup."""
    pve_sim.add_inventory_vm(96, status="stopped")
    load(pve_sim.pve, HEAD + f"role:opts:VM.Config.Options,VM.Audit:\nacl:1:/vms:{BOTH}:opts:\n")
    client = pve.client(pve_sim.inventory(), "pve1")
    client.call("PUT", "/nodes/pve1/qemu/196/config", {"ostype": "win11"})
    assert pve_sim.pve.vm(196).config["ostype"] == "win11"
    message = forbidden(pve_sim, "PUT", "/nodes/pve1/qemu/196/config", {"startup": "order=1"})
    assert "(/, Sys.Modify)" in message


def test_restore_and_container_needs_follow_pve() -> None:
    """qemu-server/pve-container `create_vm` with an archive, pve-storage
    `check_volume_access` for a backup volume, and pve-container's Status/Snapshot checks."""
    from domum_tasks.plan import PveCall
    from domum_tasks.proxmox import permissions

    def lacking(method: str, path: str, params: dict[str, Any], held: Any = None) -> list[str]:
        needs = permissions.needs_for(PveCall(method, path, params))
        return permissions.missing(held or {}, needs)

    other = "nas:backup/vzdump-qemu-197-2026_12_01-02_00_00.vma.zst"
    replace = {"vmid": 196, "archive": other, "storage": "local-lvm", "force": 1}
    assert lacking("POST", "/nodes/pve1/qemu", replace) == [
        "VM.Allocate on /vms/196 or VM.Backup on /vms/196",
        "Datastore.AllocateSpace on /storage/local-lvm",
        "Datastore.Allocate on /storage/nas"
        " or Datastore.AllocateSpace on /storage/nas + VM.Backup on /vms/197",
    ]
    # Restoring a guest's own archive over it: VM.Backup there and the target storage suffice.
    own = {**replace, "archive": other.replace("197", "196")}
    held = {"/vms/196": {"VM.Backup": 1}, "/storage/local-lvm": {"Datastore.AllocateSpace": 1}}
    assert lacking("POST", "/nodes/pve1/qemu", own, held) == []
    # Without force (a new guest), VM.Backup is no alternative to VM.Allocate.
    fresh = {k: v for k, v in own.items() if k != "force"}
    assert lacking("POST", "/nodes/pve1/qemu", fresh, held) == ["VM.Allocate on /vms/196"]
    ct = {"vmid": 210, "ostemplate": "nas:backup/vzdump-lxc-210-x.tar.zst", "restore": 1}
    assert lacking("POST", "/nodes/pve1/lxc", ct) == ["VM.Allocate on /vms/210"]
    assert lacking("POST", "/nodes/pve1/lxc/210/status/start", {}) == ["VM.PowerMgmt on /vms/210"]
    assert lacking("POST", "/nodes/pve1/lxc/210/snapshot/s1/rollback", {}) == [
        "VM.Snapshot on /vms/210 or VM.Snapshot.Rollback on /vms/210"
    ]
    assert lacking("DELETE", "/nodes/pve1/lxc/210/snapshot/s1", {}) == ["VM.Snapshot on /vms/210"]
