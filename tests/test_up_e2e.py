"""`domum up` end to end, as a user runs it, against the loopback homelab of tests/up_world.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.up_world import World, boot_vms, build

pytestmark = pytest.mark.integration


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


def test_up_reaches_the_summary(world: World) -> None:
    began = time.monotonic()
    proc = world.up()
    print(proc.stdout[-6000:], proc.stderr[-6000:])
    print("took", time.monotonic() - began)
    assert proc.returncode == 0
