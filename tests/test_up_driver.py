"""The `up` driver with stand-in phases: plans go through the real executor; a phase is recorded
only once every part ran; a failure or an interrupt (Ctrl-C, SIGTERM) leaves the finished
phases recorded and the interrupted one not, and the next run resumes there; a stop (an absent
node) exits 4 with what to do; --dry-run --json shows the plans the real run executes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from domum_tasks.errors import DomumError, Refused
from domum_tasks.plan import Local, Plan
from domum_tasks.taskutil import Planned
from domum_tasks.up import driver, state
from domum_tasks.up.model import Ctx, Part
from domum_tasks.up.phases import PHASES
from domum_tasks.up.tasks import up
from tests.fixtures.parity import recording


class World:
    """What the stand-in phases find and do: a set of things that exist."""

    def __init__(self) -> None:
        self.exists: set[str] = set()
        self.actions: list[str] = []
        self.fail: str = ""
        self.interrupt: str = ""
        self.absent = False


def _builder(world: World, phase: str) -> Any:
    def build(ctx: Ctx) -> Part:
        part = Part(f"{phase} part", probe={phase: "there" if phase in world.exists else "no"})
        if phase == "machines" and world.absent:
            part.stop = Refused("node 92 absent: `domum pi.flash --node 92 --device /dev/sdX`")
            return part
        if phase in world.exists:
            part.skip = "already there"
            return part
        plan = Plan(f"make {phase}").add(Local("make", {"what": phase}))

        def make(args: Any) -> None:
            if world.interrupt == args["what"]:
                signal.raise_signal(signal.SIGTERM)
            if world.fail == args["what"]:
                raise DomumError(f"{args['what']} failed")
            world.actions.append(args["what"])
            world.exists.add(args["what"])

        part.planned.append(Planned(plan, ctx.inv, {"make": make}))
        return part

    return build


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    w = World()
    inv = tmp_path / "inventory.yaml"
    inv.write_text((Path(__file__).parent.parent / "config" / "domum.yaml").read_text())
    monkeypatch.setenv("DOMUM_INVENTORY", str(inv))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(driver, "BUILDERS", {p: [_builder(w, p)] for p in PHASES})
    w.inventory = inv  # type: ignore[attr-defined]
    yield w


def _up(**kw: Any) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        up(Context(), **kw)
    return out.getvalue()


def _recorded() -> list[str]:
    return list(state.load()["phases"])


WORK = [p for p in PHASES if p not in ("preflight", "summary")]


def test_a_run_does_every_phase_and_a_second_does_nothing(world: World) -> None:
    _up()
    assert world.actions == list(PHASES)
    assert _recorded() == WORK
    before = state.path().read_text()
    text = _up()
    assert world.actions == list(PHASES)  # nothing acted again
    assert "probing each again" in text and "nothing to change: 0 writes" in text
    assert state.path().read_text() == before


def test_a_failure_records_the_finished_phases_and_the_next_run_resumes(world: World) -> None:
    world.fail = "talos"
    with pytest.raises(Exit) as err:
        _up()
    assert err.value.code == 1
    assert _recorded() == ["schematics", "machines"]
    world.fail = ""
    text = _up()
    assert "resuming at talos (not finished)" in text
    assert world.actions == [*PHASES[:3], "talos", "flux", "backups", "summary"]


def test_sigterm_mid_phase_exits_143_and_leaves_that_phase_unrecorded(world: World) -> None:
    world.interrupt = "flux"
    with pytest.raises(Exit) as err:
        _up()
    assert err.value.code == 143
    assert _recorded() == ["schematics", "machines", "talos"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the catcher is gone again
    world.interrupt = ""
    assert "resuming at flux" in _up()
    assert world.actions.count("flux") == 1


def test_an_absent_node_stops_with_exit_4_and_what_to_do(world: World) -> None:
    world.absent = True
    with pytest.raises(Exit) as err:
        _up()
    assert err.value.code == 4
    assert "pi.flash --node 92 --device /dev/sdX" in str(err.value.message)
    assert _recorded() == ["schematics"]


def test_a_changed_inventory_section_reruns_that_phase(world: World) -> None:
    _up()
    inv: Path = world.inventory  # type: ignore[attr-defined]
    inv.write_text(inv.read_text().replace("keep_daily: 7", "keep_daily: 8"))
    world.exists.discard("backups")
    assert "resuming at backups (its inventory changed)" in _up()
    assert world.actions == [*PHASES, "backups"]  # only the changed phase acted again


def test_only_and_from(world: World) -> None:
    _up(only="flux")
    assert world.actions == ["flux"]
    assert _recorded() == ["flux"]
    _up(from_="backups")
    assert world.actions == ["flux", "backups", "summary"]


@pytest.mark.parity("up")
def test_dry_run_json_shows_the_plans_the_run_executes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = json.loads(_up(dry_run=True, json=True))
    assert [p["phase"] for p in doc["phases"]] == list(PHASES)
    assert world.actions == [] and not state.path().exists()
    shown = [plan for ph in doc["phases"] for part in ph["parts"] for plan in part["plans"]]
    with recording(monkeypatch) as executed:
        _up()
    assert executed == shown
    assert _recorded() == WORK


def test_dry_run_stops_where_the_real_run_would(world: World) -> None:
    world.absent = True
    out = io.StringIO()
    with pytest.raises(Exit) as err, contextlib.redirect_stdout(out):
        up(Context(), dry_run=True, json=True)
    assert err.value.code == 4
    doc = json.loads(out.getvalue())
    assert [p["phase"] for p in doc["phases"]] == ["preflight", "schematics", "machines"]
    assert "pi.flash --node 92" in doc["phases"][-1]["parts"][0]["stop"]


def test_a_second_up_while_one_runs_exits_5_naming_the_holder(world: World) -> None:
    from domum_tasks.backup.bookkeeping import lock

    fd = lock.acquire(state.path().parent, driver.LOCK, "`domum up` run")
    try:
        with pytest.raises(Exit) as err:
            _up()
        assert err.value.code == 5
        assert f"another `domum up` run holds {state.path().parent / 'up.lock'}" in str(
            err.value.message
        )
        assert f"(pid {os.getpid()})" in str(err.value.message)
        assert world.actions == []
        _up(dry_run=True)  # a dry-run only reads: it takes no lock
    finally:
        os.close(fd)
    _up()
    assert world.actions == list(PHASES)
