"""The status runner and option parsing, without any stand-in (the fast tier): a probe that
fails or raises is a row with its reason, one that never answers is a "timed out" row, and the
others are all there. No timing asserts: structure only."""

from __future__ import annotations

import threading

import pytest

from domum_tasks.errors import ConfigError, ToolMissing
from domum_tasks.status.model import Probe, Row
from domum_tasks.status.parts import PARTS, parse_only, parse_timeouts
from domum_tasks.status.runner import run_probes


def test_failures_are_rows_and_a_stuck_probe_times_out() -> None:
    release = threading.Event()

    def stuck(_t: float) -> list[Row]:
        release.wait(30)  # never set before the runner gives up
        return [Row("pi", "stuck", True, "late")]

    def missing(_t: float) -> list[Row]:
        raise ToolMissing("restic not found\nhint: run inv tools.install")

    def broken(_t: float) -> list[Row]:
        raise KeyError("spec")

    def fine(t: float) -> list[Row]:
        return [Row("talos", "a", True, f"given {t:g}s"), Row("talos", "b", False, "not ready")]

    probes = [
        Probe("talos", "nodes", 5, fine),
        Probe("pi", "stuck", 0.2, stuck),
        Probe("backup", "etcd", 5, missing),
        Probe("flux", "x", 5, broken),
    ]
    try:
        rows = run_probes(probes, grace_s=0.1)
    finally:
        release.set()
    assert [(r.part, r.name, r.ok) for r in rows] == [
        ("talos", "a", True), ("talos", "b", False), ("pi", "stuck", False),
        ("backup", "etcd", False), ("flux", "x", False)]  # fmt: skip
    assert rows[0].detail == "given 5s"  # the probe gets its own timeout to hand down
    assert rows[2].detail == "timed out after 0.2s (no answer)"
    assert rows[3].detail == "restic not found"
    assert rows[4].detail == "KeyError: 'spec'"


def test_only_and_timeouts() -> None:
    assert parse_only("") == set(PARTS)
    assert parse_only(" pi, etcd ") == {"pi", "etcd"}
    with pytest.raises(ConfigError, match=r"--only pis: no such part; valid: talos, etcd"):
        parse_only("pi,pis")
    assert parse_timeouts("") == {}
    assert parse_timeouts("5") == dict.fromkeys(PARTS, 5.0)
    assert parse_timeouts("proxmox=2,pi=3.5") == {"proxmox": 2.0, "pi": 3.5}
    for bad in ("0", "-1", "soon", "pve=3", "pi=", "pi=nan", "inf"):
        with pytest.raises(ConfigError):
            parse_timeouts(bad)
