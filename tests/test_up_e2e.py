"""`domum up` end to end, as a user runs it, against the loopback homelab of tests/up_world.py:
it reaches the summary; a second `up` makes zero writes and says so."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.backup_lab import _session_members, kill_tree, wait_for, wait_gone
from tests.up_world import VM_ID, World, boot_vms, build

pytestmark = pytest.mark.integration

WRITES = (("apply-config",), ("bootstrap",), ("gen",), ("kubeconfig",), ("upgrade",))


@pytest.fixture
def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pve_sim: Any,
    fake_cli: Any,
    sshd_fleet: Any,
    restic_template: Path,
) -> Iterator[World]:
    w = build(tmp_path, monkeypatch, pve_sim, fake_cli, sshd_fleet)
    boot_vms(w)
    yield w
    w.stop_booting.set()


def cli_writes(world: World) -> list[list[str]]:
    """What the talosctl/flux stand-ins were asked to change (their log, since the last clear)."""
    out = []
    for argv in world.cli.calls:
        prog, words = argv[0], [a for a in argv[1:] if not a.startswith("-")]
        if prog == "talosctl" and words[:1] and (words[0],) in WRITES:
            out.append(argv)
        if prog == "flux" and words[:1] in (["bootstrap"], ["reconcile"], ["suspend"], ["resume"]):
            out.append(argv)
    return out


def finished(world: World, proc: Any) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "== phase 7/7: summary" in proc.stdout or "phase(s) checked" in proc.stdout
    assert "domum up: done" in proc.stdout
    st = world.cli.state
    assert st["bootstrap_count"] == 1
    assert set(st["nodes"].values()) == {"configured"}
    assert st["flux_installed"] is True
    assert all(len(ids) == 2 for ids in world.snapshot_ids().values())  # config + etcd


def test_up_reaches_the_summary_then_a_second_up_writes_nothing(world: World) -> None:
    """...and a third, after someone deleted the `sops-age` Secret, puts back only that."""
    began = time.monotonic()
    first = world.up()
    took = time.monotonic() - began
    finished(world, first)
    assert "[ ] DNS: *.domum-lab.net" in first.stdout
    assert "domum pi.flash" not in first.stdout
    assert "cloudflare token: set (cluster/core/03-cert-manager/issuers/" in first.stdout
    print(f"\nfirst up: {took:.1f}s")
    assert [m for m, _ in world.pve_writes()].count("POST") >= 2  # the VM created and started
    assert [r["applied"] for r in world.kubectl.records] == [
        ["Namespace/flux-system", "Secret/flux-system/sops-age"]
    ]

    # the second run: every phase probes again, nothing is written anywhere
    pve_before = len(world.pve.pve.requests)
    world.cli.clear()
    kubectl_before = len(world.kubectl.records)
    snaps = world.snapshot_ids()
    state = world.state_file().read_text()
    units = {p.name: p.stat().st_mtime_ns for p in world.units.iterdir()}
    began = time.monotonic()
    second = world.up()
    print(f"second up: {time.monotonic() - began:.1f}s")
    finished(world, second)
    assert "probing each again" in second.stdout
    assert "nothing to change: 0 writes" in second.stdout
    new_pve = world.pve.pve.requests[pve_before:]
    assert [(m, p) for m, p, _ in new_pve if m != "GET"] == []
    assert cli_writes(world) == []
    assert world.cli.calls  # it did probe
    new_kubectl = world.kubectl.records[kubectl_before:]
    assert [r["argv"][1] for r in new_kubectl] == ["get"]  # the sops-age Secret: probed only
    assert "sops-age Secret: present" in second.stdout
    assert world.snapshot_ids() == snaps
    assert world.state_file().read_text() == state
    assert {p.name: p.stat().st_mtime_ns for p in world.units.iterdir()} == units

    cluster = json.loads(world.kubectl.state.read_text())
    del cluster["Secret/flux-system/sops-age"]
    world.kubectl.state.write_text(json.dumps(cluster))
    world.cli.clear()
    third = world.up()
    finished(world, third)
    assert "sops-age Secret: missing" in third.stdout
    assert cli_writes(world) == []  # no flux bootstrap again
    applied = [r["applied"] for r in world.kubectl.records if r["argv"][1] == "apply"]
    assert applied[1:] == [["Namespace/flux-system", "Secret/flux-system/sops-age"]]
    assert "Secret/flux-system/sops-age" in world.kubectl.cluster


# -- kill tests: `up` killed inside each phase, then run again


@dataclass
class Point:
    """A moment inside a phase: set up (before `up` starts), reached (kill now), let go (after
    the kill: the world moves on as it would, e.g. the VM's ISO finally boots)."""

    phase: str
    prepare: Callable[[World], Callable[[], bool]]
    release: Callable[[World], None] = lambda w: None


def _held(command: str, when: str = "before") -> Callable[[World], Callable[[], bool]]:
    """The stand-in's `hold`: that call blocks; reached once it is blocked."""

    def prepare(world: World) -> Callable[[], bool]:
        flag = world.root / f"hold-{command.replace(' ', '-')}-{when}"
        world.update_state(hold={command: {"file": str(flag), "when": when}})
        return Path(f"{flag}.held").exists

    return prepare


def _rebooting(world: World) -> Callable[[], bool]:
    """apply-config done, the node installs and reboots slowly: killed before it is back."""
    world.update_state(reboot_calls=12)
    return _held("talosctl apply-config", "after")(world)


def _unhold(world: World) -> None:
    with world.cli_state() as st:
        st.pop("hold", None)


def _vm_silent(world: World) -> Callable[[], bool]:
    """Its ISO does not boot yet: up has created and started the VM and probes it."""
    world.vm_boots.clear()

    def reached() -> bool:
        vm = next((v for v in world.pve.pve.vms if v.vmid == VM_ID), None)
        asked = [c for c in world.cli.calls if "127.0.0.96" in c]
        return vm is not None and vm.status == "running" and len(asked) >= 3

    return reached


def _flux_slow(world: World) -> Callable[[], bool]:
    world.update_state(ready_after_polls=10**6)
    return lambda: int((world.cli.state.get("flux_polls") or {}).get("kustomizations", 0)) >= 2


def _flux_settles(world: World) -> None:
    with world.cli_state() as st:
        st["ready_after_polls"] = 0


def _restic(verb: str) -> Callable[[World], Callable[[], bool]]:
    """A real restic `verb` is running under `up` (its session)."""

    def prepare(world: World) -> Callable[[], bool]:
        def reached() -> bool:
            for pid in _session_members(world.spawned.pid if world.spawned else 0):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if any(a.endswith(b"restic") for a in argv) and verb.encode() in argv:
                    return True
            return False

        return reached

    return prepare


POINTS = {
    "machines: the new VM boots": Point("machines", _vm_silent, lambda w: w.vm_boots.set()),
    "talos: apply-config": Point("talos", _held("talosctl apply-config"), _unhold),
    "talos: a node reboots after apply": Point("talos", _rebooting, _unhold),
    "talos: bootstrap sent": Point("talos", _held("talosctl bootstrap"), _unhold),
    "talos: bootstrap done": Point("talos", _held("talosctl bootstrap", "after"), _unhold),
    "flux: flux bootstrap": Point("flux", _held("flux bootstrap github"), _unhold),
    "flux: waiting for Ready": Point("flux", _flux_slow, _flux_settles),
    "backups: restic backup": Point("backups", _restic("backup")),
}


def _kill(world: World, sig: signal.Signals, point: Point, name: str) -> None:
    reached = point.prepare(world)
    proc = world.spawned = world.spawn()
    try:
        wait_for(lambda: reached() or proc.poll() is not None, 150, f"up to reach {name}")
        assert proc.poll() is None, f"up ended before {name}: {proc.communicate()}"
        if name == "talos: bootstrap sent":  # meanwhile, a second up is refused: exit 5
            second = world.up()
            assert second.returncode == 5, second.stdout + second.stderr
            assert "another `domum up` run holds" in second.stderr
            assert f"(pid {proc.pid})" in second.stderr
        if sig == signal.SIGKILL:  # a power cut or a cgroup kill: every process at once
            pids = kill_tree(proc.pid)
            proc.communicate()  # reaps up itself
            wait_gone(pids)
        else:  # `kill PID`, systemd's stop: up ends its running step itself
            os.kill(proc.pid, sig)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 143, out + err
            wait_for(lambda: not _session_members(proc.pid), 20, "up's children to end")
    finally:
        kill_tree(proc.pid)  # whatever is left (nothing, when the asserts above held)
        proc.communicate()
    recorded = (
        json.loads(world.state_file().read_text())["phases"] if world.state_file().exists() else {}
    )
    assert point.phase not in recorded  # an interrupted phase is never recorded
    assert int(world.cli.state.get("bootstrap_count") or 0) <= 1
    point.release(world)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_up_killed_in_each_phase_finishes_on_the_next_run(
    world: World, sig: signal.Signals
) -> None:
    """Killed at each point in turn: each next run resumes there and goes on to the next point;
    the last run finishes, with etcd bootstrapped exactly once."""
    for name, point in POINTS.items():
        _kill(world, sig, point, name)
    finished(world, world.up())


def test_an_absent_pi_and_mini_pc_stop_up_with_what_to_do_then_it_resumes(world: World) -> None:
    world.set_node(92, "absent")  # the Pi 5's SD card is not flashed yet
    world.set_node(97, "absent")  # the mini PC was never booted from the Talos ISO
    proc = world.up()
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-3000:]
    err = proc.stderr
    assert "domum pi.flash --node 92 --device /dev/sdX" in err
    iso = re.search(r"node 97 domum-x .*boot it from the Talos ISO (\S+)", err)
    assert iso is not None, err
    assert iso.group(1).startswith(f"{world.pve.inventory().cluster.image_factory}/image/")
    assert iso.group(1).endswith("/v1.13.9/metal-amd64.iso")
    assert "domum up` again: it resumes at the machines phase" in err
    recorded = json.loads(world.state_file().read_text())["phases"]
    assert list(recorded) == ["schematics"]
    assert cli_writes(world) == []  # nothing was applied to any node

    world.set_node(92, "maintenance")  # flashed and powered on
    world.set_node(97, "maintenance")  # booted from the ISO
    again = world.up()
    assert "resuming at machines (not finished)" in again.stdout
    finished(world, again)
