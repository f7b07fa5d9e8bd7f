"""Dry-run parity for the pi namespace: each task runs with --dry-run --json and for real against
the same stand-ins (sshd hosts on 127.0.0.90-95, regular files as flash targets), and the plan the
real run executes is the one the dry-run printed (tests/fixtures/parity.py). Preconditions the
dry-run can know fail it exactly as they fail the real run: same exit code, same message."""

from __future__ import annotations

import io
import json
import struct
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from invoke import Context
from invoke.exceptions import Exit

from domum_tasks.pi.flash import tasks as flash_tasks
from domum_tasks.pi.fleet import tasks as fleet_tasks
from tests import pi_flash_support as support
from tests.fixtures.sshd_hosts import SshdFleet
from tests.pi_flash_support import PUBKEY, talos_like_raw, write_inventory

flash_env = support.flash_env  # fixture

pytestmark = pytest.mark.integration


def drop_known(fleet: SshdFleet, node_id: int) -> None:
    name = fleet.host(node_id).known_hosts_name + " "
    lines = [ln for ln in fleet.known_hosts.read_text().splitlines() if not ln.startswith(name)]
    fleet.known_hosts.write_text("".join(f"{ln}\n" for ln in lines))


def both_ways(task: Any, **options: Any) -> list[tuple[int, str, str]]:
    """(exit code, message, stdout) of the dry-run and of the real run (0 when it succeeded)."""
    out = []
    for dry_run in (True, False):
        stdout = io.StringIO()
        try:
            with redirect_stdout(stdout):
                task(Context(), dry_run=dry_run, **options)
            out.append((0, "", stdout.getvalue()))
        except Exit as exc:
            out.append((exc.code, str(exc.message), stdout.getvalue()))
    return out


# --- fleet --------------------------------------------------------------------------------------


@pytest.mark.parity("pi.run")
def test_run_parity(plan_parity: Any, fleet_inventory: Path, sshd_fleet: SshdFleet) -> None:
    (plan,) = plan_parity(fleet_tasks.run, cmd="touch $DOMUM_FAKE_ROOT/ran", all_=True, parallel=2)
    assert [s["kind"] for s in plan] == ["fanout"] and plan[0]["parallel"] == 2
    assert all((sshd_fleet.host(i).fake_root / "ran").exists() for i in (93, 94, 95))


@pytest.mark.parity("pi.update")
def test_update_parity(plan_parity: Any, fleet_inventory: Path, sshd_fleet: SshdFleet) -> None:
    sshd_fleet.host(94).set_fake("apt/upgradable", "libc6\n")
    (plan,) = plan_parity(fleet_tasks.update, all_=True, parallel=2)
    assert [len(lane) for lane in plan[0]["lanes"]] == [3, 3, 3]
    assert sshd_fleet.host(94).read_fake("apt/upgradable") == ""  # the real run upgraded


def test_run_failed_host_reaches_the_user_with_its_reason(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    """One host fails, one is down: both reasons (exit code + stderr tail, unreachable) in the
    exit-1 message; the dry-run of the same command plans all three and exits 0."""
    cmd = "echo nope >&2; exit 7"
    with sshd_fleet.down(95):
        (dry, real) = both_ways(fleet_tasks.run, cmd=cmd, node=None, all_=True, json=True)
    assert dry[0] == 0 and json.loads(dry[2])[0]["kind"] == "fanout"
    code, message, stdout = real
    assert code == 1 and message.startswith("domum: pi.run: 3 of 3 host(s) failed")
    assert "domum-dns: exit code 7: nope" in message
    assert "domum-edge (" in message and "unreachable" in message
    rows = {r["host"]: r for r in json.loads(stdout)}
    assert rows["domum-edge"]["status"] == "unreachable" and rows["domum-dns"]["exit_code"] == 7


@pytest.mark.parity("pi.reboot")
def test_reboot_parity(plan_parity: Any, fleet_inventory: Path, sshd_fleet: SshdFleet) -> None:
    (plan,) = plan_parity(fleet_tasks.reboot, node="93", wait=True, timeout=30)
    assert [s["kind"] for s in plan] == ["ssh", "wait"]
    assert sshd_fleet.host(93).read_fake("reboots") == "reboot\n"


@pytest.mark.parity("pi.enroll")
def test_enroll_parity(plan_parity: Any, fleet_inventory: Path, sshd_fleet: SshdFleet) -> None:
    drop_known(sshd_fleet, 94)
    h = sshd_fleet.host(94)
    (plan,) = plan_parity(fleet_tasks.enroll, node="94", yes=True)
    assert [s["kind"] for s in plan] == ["write"]
    assert f"{h.known_hosts_name} {h.host_pub}\n" in sshd_fleet.known_hosts.read_text()


def test_enroll_unreachable_runs_the_fresh_plan_and_fails_at_its_first_step(
    fleet_inventory: Path, sshd_fleet: SshdFleet
) -> None:
    before = sshd_fleet.known_hosts.read_text()
    with sshd_fleet.down(93):
        (dry, real) = both_ways(fleet_tasks.enroll, node="93", yes=True, json=True)
    steps = json.loads(dry[2])
    assert dry[0] == 0 and [s["action"] for s in steps] == [
        "enroll.read-host-key", "enroll.add-host-key"]  # fmt: skip
    assert steps[1]["args"]["key"] == {"result_of": 0}
    assert real[0] == 1 and "domum-dns (127.0.0.93:" in real[1]
    assert "cannot read its host key" in real[1]
    assert sshd_fleet.known_hosts.read_text() == before


def test_enroll_fresh_plan_adds_the_key_when_the_host_answers(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    """The handlers of the fresh plan, run for real: step 1 reads and shows the key, step 2
    adds it (the host came up between planning and running)."""
    from domum_tasks import taskutil
    from domum_tasks.pi.fleet import enroll, facts
    from domum_tasks.pi.fleet import plan as fleet_plan
    from domum_tasks.ssh import resolve

    drop_known(sshd_fleet, 95)
    h = sshd_fleet.host(95)
    inv = taskutil.load_inventory()
    target = resolve(inv, 95)
    path = facts.known_hosts_file(inv)
    plan = fleet_plan.enroll_fresh_plan(str(path), target.label, target.known_hosts_name)
    planned = taskutil.Planned(plan, inv, enroll.handlers(inv, target, path))
    taskutil.execute(planned, dry_run=False, json_out=False, yes=True)
    assert f"{h.known_hosts_name} {h.host_pub}\n" in sshd_fleet.known_hosts.read_text()
    assert "domum: domum-edge presents ssh-ed25519 SHA256:" in capsys.readouterr().err


# --- flash --------------------------------------------------------------------------------------


@pytest.mark.parity("pi.flash")
def test_flash_parity_onto_a_regular_file(plan_parity: Any, flash_env: Path) -> None:
    raw = flash_env / "metal-arm64.raw"
    raw.write_bytes(talos_like_raw(4))
    out = flash_env / "sd.img"
    (plan,) = plan_parity(flash_tasks.flash, node="92", image=str(raw), device=str(out), yes=True)
    assert [s["action"] for s in plan] == ["write-image", "verify"]
    assert out.read_bytes() == raw.read_bytes()


def test_flash_text_image_fails_the_dry_run_as_the_real_run(flash_env: Path) -> None:
    text = flash_env / "cmdline.txt"
    text.write_text("console=serial0,115200 root=PARTUUID=4e6a rootwait\n")
    out = flash_env / "sd.img"
    dry, real = both_ways(flash_tasks.flash, node="92", image=str(text), device=str(out), yes=True)
    assert dry[:2] == real[:2]
    assert dry[0] == 4 and "not a disk image: found text ('console=serial0" in dry[1]
    assert dry[2] == "" and not out.exists()  # no plan printed, nothing written


def _mbr_fat_type_without_fat(path: Path) -> None:
    """An MBR whose partition 1 says FAT32 (0x0c) over sectors that hold no FAT filesystem."""
    mbr = bytearray(512)
    mbr[446 + 4] = 0x0C
    mbr[446 + 8 : 446 + 16] = struct.pack("<II", 2048, 4096)
    mbr[510:512] = b"\x55\xaa"
    path.write_bytes(bytes(mbr) + bytes(4 * 2**20 - 512))


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda p: p.write_bytes(talos_like_raw(4)), "partition 1 is type 0xee"),
        (_mbr_fat_type_without_fat, "partition 1 is marked FAT but holds no FAT filesystem"),
    ],
)
def test_flash_raspios_without_a_fat_boot_partition_is_refused_before_writing(
    flash_env: Path, monkeypatch: pytest.MonkeyPatch, build: Any, why: str
) -> None:
    write_inventory(flash_env, monkeypatch, lambda d: d["ssh"].update(authorized_keys=[PUBKEY]))
    image = flash_env / "other.img"
    build(image)
    out = flash_env / "sd.img"
    dry, real = both_ways(flash_tasks.flash, node="93", image=str(image), device=str(out), yes=True)
    assert dry[:2] == real[:2]
    code, message, _ = real
    assert code == 4 and "\n" not in message and "internal error" not in message
    assert message.startswith(f"domum: {image}: not a Raspberry Pi OS image: ") and why in message
    assert "nothing was written" in message and not out.exists()
    # Also onto an existing file: not a byte changes.
    out.write_bytes(b"keep")
    assert (
        both_ways(flash_tasks.flash, node="93", image=str(image), device=str(out), yes=True)[1][:2]
        == real[:2]
    )
    assert out.read_bytes() == b"keep"
