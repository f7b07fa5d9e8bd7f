"""`domum up --wait` against the loopback homelab of tests/up_world.py, with node 92 (a Talos
Pi 5) absent: `up` says it waits for it and keeps probing; once the Pi answers in maintenance
mode it goes on to the summary. If nothing appears by --wait-timeout it stops as it would
without --wait (exit 4: what to do, where it resumes). `--dry-run --wait` shows the plan of that
real run: node 92 in the talos phase as it will be once it appears, not as a rebooting node."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from tests.backup_lab import kill_tree, wait_for
from tests.up_world import World, cli_writes, finished, ip, world  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration

PI = 92  # domum-xr2, a Raspberry Pi 5 running Talos
WAITING = f"--wait: waiting up to 60s for node {PI} domum-xr2 ({ip(PI)}) to appear"


def _probes_of(world: World, node_id: int) -> int:
    return sum(1 for argv in world.cli.calls if ip(node_id) in argv)


def _reader(pipe: object, into: list[str]) -> threading.Thread:
    """Collect a pipe's lines as they come (the test looks while `up` still runs)."""

    def loop() -> None:
        for line in pipe:  # type: ignore[attr-defined]
            into.append(line)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_up_waits_for_an_absent_pi_then_finishes(world: World) -> None:
    world.set_node(PI, "absent")  # its SD card is being flashed
    proc = world.spawn("--wait")  # up_world's --wait-timeout 60s, --poll 0.2s
    out: list[str] = []
    err: list[str] = []
    readers = [_reader(proc.stdout, out), _reader(proc.stderr, err)]
    try:
        said = lambda: any(WAITING in line for line in out) or proc.poll() is not None  # noqa: E731
        wait_for(said, 120, "up to say it waits")
        assert proc.poll() is None, "".join(out + err)[-3000:]
        # it keeps probing the Pi (more than the machines phase's one probe), and still runs
        probed = _probes_of(world, PI)
        wait_for(lambda: _probes_of(world, PI) >= probed + 3, 60, "up to probe node 92 again")
        assert proc.poll() is None, "".join(out + err)[-3000:]
        assert cli_writes(world) == []  # nothing applied while a node is missing
        assert "domum pi.flash --node 92 --device /dev/sdX" in "".join(out)

        world.set_node(PI, "maintenance")  # flashed, put in and powered on
        proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            kill_tree(proc.pid)
        for t in readers:
            t.join(timeout=10)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "".join(out), "".join(err))
    finished(world, done)  # the summary, exit 0, bootstrap_count == 1, every node configured
    applied = [c for c in cli_writes(world) if c[1] == "apply-config"]
    assert any(ip(PI) in c for c in applied)  # the Pi got its config once it appeared


def test_up_wait_runs_out_and_names_the_node_still_absent(world: World) -> None:
    """docs/getting-started.md: exit 4 when it needs you (a node is absent), with the hint."""
    world.set_node(PI, "absent")
    at = world.options.index("--wait-timeout") + 1  # invoke takes a flag once: replace it
    world.options = (*world.options[:at], "5s", *world.options[at + 1 :])
    began = time.monotonic()
    proc = world.up("--wait")
    took = time.monotonic() - began
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-3000:]
    err = proc.stderr
    assert "--wait-timeout ran out" in err
    assert "node 92 domum-xr2 (127.0.0.92, rpi5) is absent" in err
    assert "domum pi.flash --node 92 --device /dev/sdX" in err
    assert "it resumes at the machines phase" in err
    assert "Traceback" not in err
    assert took >= 5  # it did wait
    assert cli_writes(world) == []
    assert list(json.loads(world.state_file().read_text())["phases"]) == ["schematics"]


def _phase(stdout: str, name: str) -> str:
    tail = stdout.split(f": {name}\n", 1)[1]
    return tail.split("\n== phase ", 1)[0]


def test_dry_run_wait_plans_the_pi_as_it_will_be_once_it_appears(world: World) -> None:
    world.set_node(PI, "absent")
    proc = world.up("--dry-run", "--wait")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert world.pve_writes() == [] and cli_writes(world) == []
    machines = _phase(proc.stdout, "machines")
    assert WAITING in machines
    assert f"wait up to 60s for node {PI} domum-xr2 ({ip(PI)}) to answer" in machines
    talos = _phase(proc.stdout, "talos")
    assert "domum-xr2: maintenance (assumed: once it appears (--wait))" in talos
    assert "rebooting?" not in talos  # it is not a node an earlier apply made reboot
    apply = talos.split("Plan: apply machine configs", 1)[1].split("Plan: ", 1)[0]
    assert f"--nodes {ip(PI)} " in apply and "--insecure" in apply
    assert "-- apps and what remains by hand" in proc.stdout  # it goes on, like the real run

    # without --wait the dry-run stops where the real run stops: at the machines phase
    stop = world.up("--dry-run")
    assert stop.returncode == 4, stop.stdout[-3000:] + stop.stderr[-3000:]
    assert "== phase 4/7: talos" not in stop.stdout
