"""`domum up`: phase order, which phases a run picks (resume, changed inventory, --from,
--only, bad names), and the state file (atomic, per-phase inventory hashes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from invoke import Context, Exit

from domum_tasks.errors import ConfigError
from domum_tasks.up import phases, state
from domum_tasks.up.phases import PHASES

INV = {
    "cluster": {"name": "c"},
    "nodes": {90: {"hostname": "a"}},
    "backup": {"jobs": {}},
    "flux": {"owner": "o"},
}


def test_the_phases_in_the_order_the_issue_gives() -> None:
    assert PHASES == (
        "preflight",
        "schematics",
        "machines",
        "talos",
        "flux",
        "backups",
        "summary",
    )


def test_a_fresh_run_runs_every_phase() -> None:
    chosen, why = phases.select({}, state.hashes(INV))
    assert chosen == list(PHASES)
    assert "schematics" in why


def test_resume_at_the_first_unfinished_phase_preflight_and_summary_always_run() -> None:
    h = state.hashes(INV)
    done = {p: h[p] for p in ("schematics", "machines")}
    chosen, why = phases.select(done, h)
    assert chosen == ["preflight", "talos", "flux", "backups", "summary"]
    assert why == "resuming at talos (not finished)"


def test_a_changed_section_reruns_that_phase_and_every_later_one() -> None:
    h = state.hashes(INV)
    done = {p: h[p] for p in PHASES}
    changed = {**INV, "backup": {"jobs": {"config": {"kind": "config"}}}}
    h2 = state.hashes(changed)
    assert [p for p in PHASES if h[p] != h2[p]] == ["preflight", "backups", "summary"]
    chosen, why = phases.select(done, h2)
    assert chosen == ["preflight", "backups", "summary"]
    assert "its inventory changed" in why
    # a node change reaches schematics first: everything after it runs again
    h3 = state.hashes({**INV, "nodes": {90: {"hostname": "b"}}})
    assert phases.select(done, h3)[0] == list(PHASES)


def test_everything_finished_probes_every_phase_again() -> None:
    h = state.hashes(INV)
    chosen, why = phases.select({p: h[p] for p in PHASES}, h)
    assert chosen == list(PHASES)
    assert "probing each again" in why


def test_from_and_only() -> None:
    h = state.hashes(INV)
    assert phases.select({}, h, start="flux")[0] == ["flux", "backups", "summary"]
    assert phases.select({}, h, only="talos")[0] == ["talos"]
    with pytest.raises(ConfigError, match="not both"):
        phases.select({}, h, start="flux", only="talos")


@pytest.mark.parametrize("option", ["start", "only"])
def test_a_bad_phase_name_lists_the_valid_ones(option: str) -> None:
    with pytest.raises(ConfigError) as err:
        phases.select({}, state.hashes(INV), **{option: "etcd"})
    assert "'etcd': not a phase; valid phases: preflight, schematics, machines" in str(err.value)
    assert err.value.exit_code == 2


@pytest.mark.parametrize("flag", ["from_", "only"])
def test_the_task_exits_2_on_a_bad_phase_before_anything_runs(
    flag: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from domum_tasks.up.tasks import up

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setenv("DOMUM_INVENTORY", str(tmp_path / "missing.yaml"))
    with pytest.raises(Exit) as err:
        up(Context(), **{flag: "nope"})
    assert err.value.code == 2
    assert "valid phases: preflight" in str(err.value.message)
    assert not (tmp_path / "domum").exists()


def test_state_file_records_atomically_and_keeps_phase_order(tmp_path: Path) -> None:
    f = tmp_path / "domum" / "up.json"
    state.record("talos", "h2", "/inv.yaml", f)
    state.record("schematics", "h1", "/inv.yaml", f)
    data = json.loads(f.read_text())
    assert list(data["phases"]) == ["schematics", "talos"]
    assert state.finished(state.load(f), "/inv.yaml") == {"schematics": "h1", "talos": "h2"}
    assert [p.name for p in f.parent.iterdir()] == ["up.json"]  # no temp file left


def test_recording_the_same_hash_again_does_not_rewrite(tmp_path: Path) -> None:
    f = tmp_path / "up.json"
    state.record("talos", "h", "/inv.yaml", f)
    before = f.stat().st_mtime_ns, f.read_text()
    state.record("talos", "h", "/inv.yaml", f)
    assert (f.stat().st_mtime_ns, f.read_text()) == before


def test_another_inventory_file_starts_afresh(tmp_path: Path) -> None:
    f = tmp_path / "up.json"
    state.record("talos", "h", "/a.yaml", f)
    assert state.finished(state.load(f), "/b.yaml") == {}
    state.record("flux", "h", "/b.yaml", f)
    assert state.finished(state.load(f), "/b.yaml") == {"flux": "h"}


@pytest.mark.parametrize("text", ["", "{not json", '{"version": 99, "phases": {}}', "[]"])
def test_an_unreadable_state_file_means_nothing_finished(tmp_path: Path, text: str) -> None:
    f = tmp_path / "up.json"
    f.write_text(text)
    assert state.finished(state.load(f), "/inv.yaml") == {}


def test_state_file_location_follows_xdg_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state.path() == tmp_path / "domum" / "up.json"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state.path() == tmp_path / "home" / ".local" / "state" / "domum" / "up.json"


def test_hash_ignores_comments_and_key_order(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("cluster: {name: c}\nnodes: {}\n")
    b.write_text("# a comment\nnodes: {}\ncluster:\n  name: c\n")
    assert state.inventory_hashes(a) == state.inventory_hashes(b)
