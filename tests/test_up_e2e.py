"""`domum up` end to end, as a user runs it, against the loopback homelab of tests/up_world.py:
it reaches the summary; a second `up` makes zero writes and says so; an absent Pi or mini PC
stops it with what to do, and once they answer it resumes. The kill tests: test_up_kill.py."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.up_world import World, cli_writes, finished, world  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration


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
