"""`domum up` killed with SIGKILL (a power cut) and SIGTERM (`kill`, systemd) inside each phase,
at deterministic moments (a stand-in call held, a VM whose ISO does not boot yet, Flux not Ready,
a restic backup running), against the loopback homelab of tests/up_world.py: each next run
resumes, the last finishes, and etcd is bootstrapped exactly once. A second `up` meanwhile is
refused (exit 5, the holder's pid)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.backup_lab import _session_members, kill_tree, wait_for, wait_gone
from tests.up_world import VM_ID, World, finished, world  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration


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
    before = len([c for c in world.cli.calls if "127.0.0.96" in c])

    def reached() -> bool:
        vm = next((v for v in world.pve.pve.vms if v.vmid == VM_ID), None)
        asked = [c for c in world.cli.calls if "127.0.0.96" in c]
        return vm is not None and vm.status == "running" and len(asked) >= before + 2

    return reached


def _pve_creating(world: World) -> Callable[[], bool]:
    """PVE's tasks take real time: up has asked PVE to create the VM and waits for the task.
    (Its ISO does not boot until the next point has killed up while waiting for it.)"""
    world.vm_boots.clear()
    world.pve.pve.time_scale = 0.5

    def reached() -> bool:
        return any(m == "POST" and p.endswith("/qemu") for m, p, _ in world.pve.pve.requests)

    return reached


def _pve_fast(world: World) -> None:
    world.pve.pve.time_scale = 0


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
    "machines: PVE creates the VM": Point("machines", _pve_creating, _pve_fast),
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
