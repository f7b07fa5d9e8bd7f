"""domum_tasks.ssh against real OpenSSH servers on 127.0.0.90-95 (tests/fixtures/sshd_hosts.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from domum_tasks import plan, ssh
from domum_tasks.errors import ConfigError, RemoteError
from domum_tasks.inventory import loader as inventory
from tests.fixtures.sshd_hosts import SshdFleet

pytestmark = pytest.mark.integration


@pytest.fixture
def inv(fleet_inventory: Path) -> object:
    return inventory.load_with_findings().inventory


def test_connect_with_known_key_runs_the_command(inv, sshd_fleet: SshdFleet) -> None:
    target = ssh.resolve(inv, 93)
    assert (target.host, target.port, target.user) == (
        "127.0.0.93",
        sshd_fleet.host(93).port,
        sshd_fleet.user,
    )
    result = ssh.run_on(inv, target, "echo hello-$((6*7)); vcgencmd measure_temp")
    assert result.status == "ok", result.error
    assert result.stdout.splitlines() == ["hello-42", "temp=48.3'C"]
    assert result.exit_code == 0


def test_unknown_host_key_is_rejected_before_running_anything(inv, sshd_fleet: SshdFleet) -> None:
    # known_hosts lists every host but 93.
    h93 = sshd_fleet.host(93)
    lines = [
        ln
        for ln in sshd_fleet.known_hosts.read_text().splitlines()
        if not ln.startswith(h93.known_hosts_name + " ")
    ]
    sshd_fleet.known_hosts.write_text("\n".join(lines) + "\n")
    result = ssh.run_on(inv, ssh.resolve(inv, 93), "touch $DOMUM_FAKE_ROOT/ran")
    assert result.status == "unknown-key"
    assert "inv pi.enroll --node 93" in result.error
    assert not (h93.fake_root / "ran").exists()
    # Nothing was added to known_hosts behind our back.
    assert h93.host_pub not in sshd_fleet.known_hosts.read_text()


def test_missing_known_hosts_file_means_every_key_is_unknown(inv, sshd_fleet: SshdFleet) -> None:
    sshd_fleet.known_hosts.unlink()
    result = ssh.run_on(inv, ssh.resolve(inv, 94), "true")
    assert result.status == "unknown-key"
    assert not sshd_fleet.known_hosts.exists()


def test_changed_host_key_is_rejected(inv, sshd_fleet: SshdFleet, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    h95 = sshd_fleet.host(95)
    new_pub = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    text = sshd_fleet.known_hosts.read_text().replace(h95.host_pub, new_pub)
    assert new_pub in text
    sshd_fleet.known_hosts.write_text(text)
    result = ssh.run_on(inv, ssh.resolve(inv, 95), "touch $DOMUM_FAKE_ROOT/ran")
    assert result.status == "changed-key"
    assert "CHANGED" in result.error and "inv pi.enroll --node 95" in result.error
    assert not (h95.fake_root / "ran").exists()


def test_down_host_is_a_per_host_result(inv, sshd_fleet: SshdFleet) -> None:
    targets = [ssh.resolve(inv, i) for i in (93, 94, 95)]
    with sshd_fleet.down(94):
        results = ssh.fanout(inv, targets, "hostname >/dev/null && echo up")
    assert [r.target.node_id for r in results] == [93, 94, 95]
    assert [r.status for r in results] == ["ok", "unreachable", "ok"]
    assert results[0].stdout == "up\n" and results[2].stdout == "up\n"
    assert "domum-zigbee" in results[1].error and "unreachable" in results[1].error


def test_nonzero_exit_is_a_failed_result_with_stderr(inv) -> None:
    result = ssh.run_on(inv, ssh.resolve(inv, 93), "echo oops >&2; exit 3")
    assert (result.status, result.exit_code) == ("failed", 3)
    assert result.reason() == "exit code 3: oops"


def test_command_timeout(inv) -> None:
    result = ssh.run_on(inv, ssh.resolve(inv, 93), "sleep 30", timeout_s=2)
    assert result.status == "timeout"
    assert "timed out" in result.error


def test_fanout_respects_the_parallel_cap(inv, sshd_fleet: SshdFleet) -> None:
    # Each host logs start/end times; with a cap of 2, no more than 2 intervals overlap.
    cmd = 's=$(date +%s.%N); sleep 1; e=$(date +%s.%N); echo "$s $e" > $DOMUM_FAKE_ROOT/interval'
    targets = [ssh.resolve(inv, i) for i in range(90, 96)]
    results = ssh.fanout(inv, targets, cmd, parallel_cap=2)
    assert all(r.ok for r in results), [r.error for r in results]
    spans = [
        tuple(map(float, sshd_fleet.host(i).read_fake("interval").split())) for i in range(90, 96)
    ]
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak == 2


def test_ssh_config_of_the_user_is_ignored(inv, tmp_path: Path, monkeypatch) -> None:
    # A ~/.ssh/config that would send us to a closed port if fabric read it.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n  Port 1\n  User nobody\n")
    monkeypatch.setenv("HOME", str(home))
    assert ssh.run_on(inv, ssh.resolve(inv, 93), "true").ok


def test_explicit_key_disables_agent_and_key_search(inv) -> None:
    conn = ssh.connection(inv, ssh.resolve(inv, 93))
    assert conn.connect_kwargs["look_for_keys"] is False
    assert conn.connect_kwargs["allow_agent"] is False
    assert conn.connect_kwargs["key_filename"] in (inv.ssh.key_file, [inv.ssh.key_file])


def test_without_a_key_file_the_agent_may_be_used() -> None:
    inv = inventory.load_with_findings().inventory.model_copy(deep=True)
    object.__setattr__(inv.ssh, "key_file", "/nonexistent/key")
    conn = ssh.connection(inv, ssh.resolve(inv, 93))
    assert "look_for_keys" not in conn.connect_kwargs
    assert "allow_agent" not in conn.connect_kwargs


def test_run_step_success_and_failure(inv) -> None:
    ok = ssh.run_step(inv, plan.Ssh(host="127.0.0.93", command="echo step"))
    assert ok.ok and ok.stdout == "step\n"
    with pytest.raises(
        RemoteError, match=r"domum-zigbee: exit code 7: echo bad >&2; exit 7\n  \| bad"
    ):
        ssh.run_step(inv, plan.Ssh(host="127.0.0.94", command="echo bad >&2; exit 7"))


def test_run_step_unknown_key_raises(inv, sshd_fleet: SshdFleet) -> None:
    sshd_fleet.known_hosts.write_text("")
    with pytest.raises(RemoteError, match=r"inv pi.enroll --node 93"):
        ssh.run_step(inv, plan.Ssh(host="127.0.0.93", command="true"))


def test_resolve_names() -> None:
    inv = inventory.load_with_findings().inventory  # plain loopback inventory
    assert ssh.resolve(inv, "domum-dns").label == "domum-dns"
    assert ssh.resolve(inv, "127.0.0.95").node_id == 95
    nas = ssh.resolve(inv, "nas")
    assert (nas.host, nas.user, nas.label) == ("127.0.0.20", "root", "nas")
    assert ssh.resolve(inv, "127.0.0.20") == nas
    with pytest.raises(
        ConfigError, match=r"host '127.0.0.99' is not a node or the NAS.*valid: 90, 91"
    ):
        ssh.resolve(inv, "127.0.0.99")


def test_relative_paths_are_from_the_repo_root() -> None:
    inv = inventory.load_with_findings().inventory
    assert ssh.known_hosts_path(inv) == inventory.REPO_ROOT / "config" / "known_hosts"
    assert ssh.repo_path("/abs/kh") == Path("/abs/kh")
