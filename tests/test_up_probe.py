"""up's node probe (facts.talos_state) against the talosctl stand-in's lifecycle, whose answers
follow upstream (tests/fakes/talos_lifecycle.py cites them): maintenance = `--insecure` answers
and the talosconfig's CA fails with x509; configured = the talosconfig answers, and without it
`--insecure` meets tls "certificate required" (still configured: never "absent", which would
tell the user to re-flash a running node); absent = connection refused."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from domum_tasks.taskutil import load_inventory
from domum_tasks.up import facts

pytestmark = pytest.mark.integration

CP = "127.0.0.90"  # node 90 of tests/data/loopback.yaml


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_cli: Any) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(root))
    return root


def _talosconfig(repo: Path) -> None:
    """The cluster's talosconfig, from the stand-in's `gen config` (as genconfig makes it)."""
    subprocess.run(
        ["talosctl", "gen", "config", "domum", f"https://{CP}:6443", "-o", "clusterconfig"],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.mark.parametrize("with_talosconfig", [False, True])
def test_maintenance(repo: Path, fake_cli: Any, with_talosconfig: bool) -> None:
    if with_talosconfig:
        _talosconfig(repo)  # its CA is not the maintenance certificate's: x509, then --insecure
    fake_cli.set_state(nodes={CP: "maintenance"})
    assert facts.talos_state(load_inventory(), 90).state == "maintenance"


def test_configured(repo: Path, fake_cli: Any) -> None:
    _talosconfig(repo)
    fake_cli.set_state(nodes={CP: "configured"})
    found = facts.talos_state(load_inventory(), 90)
    assert (found.state, found.detail) == ("configured", "")
    assert [c for c in fake_cli.calls if "--insecure" in c] == []  # one authenticated call


def test_configured_without_a_talosconfig_here_is_not_absent(repo: Path, fake_cli: Any) -> None:
    fake_cli.set_state(nodes={CP: "configured"})
    found = facts.talos_state(load_inventory(), 90)
    assert (found.state, found.detail) == ("configured", "no talosconfig here")


@pytest.mark.parametrize("with_talosconfig", [False, True])
def test_absent(repo: Path, fake_cli: Any, with_talosconfig: bool) -> None:
    if with_talosconfig:
        _talosconfig(repo)
    fake_cli.set_state(nodes={CP: "absent"})
    found = facts.talos_state(load_inventory(), 90)
    assert found.state == "absent"
    assert f"dial tcp {CP}:50000: connect: connection refused" in found.detail


def test_a_raspios_pi_that_answers_unenrolled_is_still_waited_for(
    fleet_inventory: Path, sshd_fleet: Any
) -> None:
    """`up --wait` must not go on past a freshly flashed Pi whose host key nobody confirmed:
    the wait probe keeps failing, naming `domum pi.enroll`, until it is enrolled."""
    from domum_tasks.errors import DomumError

    inv = load_inventory()
    pi = next(i for i, n in inv.nodes.items() if n.os == "raspios")
    sshd_fleet.known_hosts.write_text("")  # a real sshd answers; its key is not known yet
    try:
        assert facts.node_states(inv, [pi])[pi].state == "unenrolled"
        with pytest.raises(DomumError, match=rf"pi\.enroll --node {pi}"):
            facts.node_answers(inv, pi)
    finally:
        sshd_fleet.reset()
    assert facts.node_answers(inv, pi).state == "reachable"  # enrolled: the wait ends
