"""The inventory loader: the embedded default, the malformed corpus, and cross-field checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from domum_tasks.errors import ConfigError
from domum_tasks.inventory.loader import DEFAULT_PATH, load, load_with_findings

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data" / "bad_inventories"
CASES = sorted(p.stem for p in CORPUS.glob("*.yaml"))


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 20
    missing = [c for c in CASES if not (CORPUS / f"{c}.expected").exists()]
    assert missing == []


def _expected(case: str) -> list[str]:
    """The case's problems, one per line (`file:line: field: message`)."""
    return (CORPUS / f"{case}.expected").read_text().removeprefix("domum: ").splitlines()


@pytest.mark.parametrize("case", CASES)
def test_malformed_inventory_gives_exact_message(case: str) -> None:
    """`inv check --json` on each bad file: exit 2, every problem as a finding (stdout), the
    one-line summary the README's cron recipe mails (stderr), and no traceback."""
    env = {**os.environ, "DOMUM_INVENTORY": f"{case}.yaml"}
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "check", "--json"],
        cwd=CORPUS,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    rows = json.loads(proc.stdout)
    assert [f"{r['subject']}: {r['detail']}" for r in rows] == _expected(case)
    assert {r["result"] for r in rows} == {"error"}
    assert proc.stderr == f"domum: check failed: {len(rows)} error(s)\n"


@pytest.mark.parametrize("case", CASES)
def test_other_tasks_get_the_same_problems_as_one_error(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS)
    with pytest.raises(ConfigError) as err:
        load(CORPUS / f"{case}.yaml")
    assert str(err.value).splitlines() == _expected(case)


def test_bad_inventory_check_still_prints_the_table() -> None:
    env = {**os.environ, "DOMUM_INVENTORY": "field-and-cross-errors.yaml"}
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "check"],
        cwd=CORPUS,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "nodes.92.mac" in proc.stdout and "nodes.96.vm.host" in proc.stdout
    assert proc.stderr == "domum: check failed: 2 error(s)\n"


def test_embedded_default_loads_and_describes_the_homelab() -> None:
    loaded = load_with_findings(DEFAULT_PATH)
    inv = loaded.inventory
    assert loaded.warnings == []
    assert inv.cluster.name == "domum"
    assert inv.cluster.talos_version.startswith("v1.13.")
    cps = inv.controlplanes
    assert len(cps) == 3
    assert [cps[i].platform for i in (90, 91)] == ["rpi4", "rpi4"]
    assert sum(n.platform == "proxmox-vm" for n in cps.values()) == 1
    assert inv.nodes[92].hostname == "domum-xr2" and inv.nodes[92].role == "worker"
    assert len(inv.pis) == 6
    assert {n.os for n in inv.pis.values()} == {"talos", "raspios"}
    assert "HP ProDesk 600 G3" in inv.nodes[97].model and inv.nodes[97].hostname == "domum-x"
    assert any("M720q" in n.model and n.role == "worker" for n in inv.nodes.values())
    assert "M720q" in inv.proxmox["pve1"].model


def test_domum_inventory_selects_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "mine.yaml"
    other.write_text(DEFAULT_PATH.read_text().replace("name: domum\n", "name: lab2\n", 1))
    monkeypatch.setenv("DOMUM_INVENTORY", str(other))
    assert load().cluster.name == "lab2"


def test_even_controlplane_count_is_a_warning(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text().replace(
        "    hostname: domum-m720q\n    ip: 10.0.10.98\n    mac: 8c:16:45:10:00:98\n    role: worker",
        "    hostname: domum-m720q\n    ip: 10.0.10.98\n    mac: 8c:16:45:10:00:98\n    role: controlplane",
    )
    path = tmp_path / "four.yaml"
    path.write_text(text)
    loaded = load_with_findings(path)
    assert len(loaded.inventory.controlplanes) == 4
    assert len(loaded.warnings) == 1
    assert "4 control planes" in loaded.warnings[0] and "odd" in loaded.warnings[0]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        DEFAULT_PATH.read_text()
        .replace("role: wo", "role: xo", 1)
        .replace("mac: dc:a6:32:10:00:91", "mac: nope", 1)
    )
    path = tmp_path / "two.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert any("nodes.91.mac" in line for line in lines)
    assert any("nodes.92.role" in line for line in lines)


def test_unknown_node_id_names_the_valid_ones() -> None:
    inv = load(DEFAULT_PATH)
    with pytest.raises(ConfigError, match=r"--node 42: no such node; valid ids: 90, 91, 92"):
        inv.node(42)


def test_check_prints_the_table_and_exits_2_on_a_checker_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from invoke import Context, Exit

    import domum_tasks.check as checks
    from domum_tasks import ns

    check_task = ns.tasks["check"]

    def broken(loaded: object) -> list[checks.CheckFinding]:
        raise ConfigError("cluster/core/01-talos/node-92.yaml: not valid for Talos v1.13")

    def warn_only(loaded: object) -> list[checks.CheckFinding]:
        return [checks.CheckFinding("extra", "warning", "x", "just a warning")]

    monkeypatch.setattr(checks, "CHECKERS", [*checks.CHECKERS[:1], ("manifests", broken)])
    with pytest.raises(Exit) as err:
        check_task(Context())
    out = capsys.readouterr().out
    assert err.value.code == 2 and "check failed: 1 error(s)" in str(err.value.message)
    assert "manifests" in out and "node-92.yaml" in out and "inventory" in out

    monkeypatch.setattr(checks, "CHECKERS", [*checks.CHECKERS[:1], ("extra", warn_only)])
    check_task(Context(), json=True)  # warnings alone pass
    rows = json.loads(capsys.readouterr().out)
    assert any(r.get("result") == "warning" for r in rows), rows


def test_nodes_left_out_of_the_cross_checks_cause_no_false_errors(tmp_path: Path) -> None:
    """Every control plane has a bad role: they cannot be repaired, so they are left out of the
    cross-field checks; those must not then claim 'no node has role controlplane'."""
    text = (REPO / "tests" / "data" / "loopback.yaml").read_text()
    text = text.replace("role: controlplane", "role: boss")
    text = text.replace("      host: pve1\n", "      host: pve2\n")
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path)
    lines = str(err.value).splitlines()
    assert sum("role:" in line for line in lines) == 3
    assert not any("no node has role controlplane" in line for line in lines)
    # node 96 is one of them, so its vm.host is not judged either (it was left out)
    assert not any("vm.host" in line for line in lines)
