"""pi.status/run/update/reboot/enroll against real sshd hosts on 127.0.0.90-95.

The fixture hosts have a fake vcgencmd, apt-get and reboot on their PATH and their own fake data
(tests/fixtures/sshd_hosts.py). Talos Pis go through the strict fake talosctl (fake_cli).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context
from invoke.exceptions import Exit

from domum_tasks.pi.fleet import tasks as fleet_tasks
from tests.fixtures.sshd_hosts import SshdFleet

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent


def call(task: Any, **kw: Any) -> None:
    task(Context(), **kw)


def rows_of(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def drop_known(fleet: SshdFleet, node_id: int) -> None:
    name = fleet.host(node_id).known_hosts_name + " "
    lines = [ln for ln in fleet.known_hosts.read_text().splitlines() if not ln.startswith(name)]
    fleet.known_hosts.write_text("".join(f"{ln}\n" for ln in lines))


# --- pi.status ---------------------------------------------------------------------------------


def test_status_rows_for_every_pi_with_one_down(
    fleet_inventory: Path, sshd_fleet: SshdFleet, fake_cli_absent: Any, capsys: Any
) -> None:
    sshd_fleet.host(94).set_fake("vcgencmd/throttled", "0x50005\n")
    sshd_fleet.host(94).set_fake("vcgencmd/temp", "71.2\n")
    sshd_fleet.host(93).set_fake("run/reboot-required", "*** System restart required ***\n")
    sshd_fleet.host(93).set_fake("run/reboot-required.pkgs", "linux-image-rpi-v8\n")
    with sshd_fleet.down(95), pytest.raises(Exit) as exc:
        call(fleet_tasks.status, json=True)
    # The status rule: the rows first, then exit 1 naming the host that is down and why.
    assert exc.value.code == 1
    assert str(exc.value.message) == (
        "domum: 1 of 6 Pi(s) down: domum-edge: unreachable: connection refused"
    )
    rows = {r["node"]: r for r in rows_of(capsys)}
    assert sorted(rows) == [90, 91, 92, 93, 94, 95]
    # Raspberry Pi OS hosts, probed over SSH.
    assert rows[93]["reachable"] and rows[93]["reboot_required"] is True
    assert rows[93]["reboot_packages"] == ["linux-image-rpi-v8"]
    assert rows[93]["throttling"] == [] and rows[93]["temp_c"] == 48.3
    assert rows[94]["throttled"] == "0x50005" and rows[94]["temp_c"] == 71.2
    assert rows[94]["throttling"] == [
        "under-voltage now", "throttled now", "under-voltage ever", "throttled ever"]  # fmt: skip
    assert rows[94]["kernel"] == os.uname().release  # the sshd host's real kernel
    assert rows[94]["reboot_required"] is False
    assert 0 <= rows[94]["disk_used_pct"] <= 100 and rows[94]["uptime_s"] > 0
    assert rows[95]["reachable"] is False and "unreachable" in rows[95]["error"]
    # Talos Pis without talosctl: a row that says so, not a crash.
    for n in (90, 91, 92):
        assert rows[n]["os_family"] == "talos" and rows[n]["reachable"] is None  # not asked
        assert rows[n]["error"].startswith("talosctl not found")


def test_status_says_why_and_the_table_matches_json(
    fleet_inventory: Path,
    sshd_fleet: SshdFleet,
    fake_cli_absent: Any,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    drop_known(sshd_fleet, 94)
    reasons = {}
    for json_out in (True, False):
        with pytest.raises(Exit) as exc:
            call(fleet_tasks.status, json=json_out)
        assert exc.value.code == 1
        assert "domum-zigbee: host key unknown: run `inv pi.enroll --node 94`" in str(
            exc.value.message
        )
        reasons[json_out] = capsys.readouterr().out
    rows = {r["node"]: r for r in json.loads(reasons[True])}
    assert rows[94]["reachable"] is False
    assert rows[94]["error"] == "host key unknown: run `inv pi.enroll --node 94`"
    table = {
        line.split("│")[1].strip(): line for line in reasons[False].splitlines() if "│" in line
    }
    word = {True: "yes", False: "down", None: "unknown"}
    for node, row in rows.items():
        cells = [c.strip() for c in table[str(node)].split("│")]
        assert cells[3] == word[row["reachable"]], (node, cells)


def test_status_table(
    fleet_inventory: Path, fake_cli_absent: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    call(fleet_tasks.status)
    out = capsys.readouterr().out
    assert "Raspberry Pis" in out and "domum-zigbee" in out and "48.3°C" in out


def test_status_talos_pis_through_talosctl(
    fleet_inventory: Path, fake_cli: Any, tmp_path: Path, capsys: Any
) -> None:
    talosconfig = tmp_path / "talosconfig"
    talosconfig.write_text(yaml.safe_dump({"context": "domum", "contexts": {"domum": {
        "endpoints": ["127.0.0.90"], "ca": "x", "crt": "x", "key": "x"}}}))  # fmt: skip
    data = yaml.safe_load(fleet_inventory.read_text())
    data["cluster"]["talosconfig"] = str(talosconfig)
    fleet_inventory.write_text(yaml.safe_dump(data))
    fake_cli.set_state(unhealthy=["127.0.0.91"], talos_version="v1.13.8")
    call(fleet_tasks.status, json=True)
    rows = {r["node"]: r for r in rows_of(capsys)}
    assert rows[90]["os"] == "Talos v1.13.8 (running, ready)" and rows[90]["ready"] is True
    assert rows[91]["os"] == "Talos v1.13.8 (booting, not ready)" and rows[91]["ready"] is False
    assert rows[93]["reachable"] and rows[93]["os_family"] == "raspios"
    # Always explicit node, endpoint and talosconfig.
    calls = fake_cli.calls_of("talosctl")
    assert ["talosctl", "version", "--talosconfig", str(talosconfig), "--nodes", "127.0.0.92",
            "--endpoints", "127.0.0.92"] in calls  # fmt: skip
    assert len(calls) == 6 and all("--endpoints" in c and "--nodes" in c for c in calls)


def test_status_talos_without_talosconfig(
    fleet_inventory: Path, fake_cli: Any, capsys: Any
) -> None:
    data = yaml.safe_load(fleet_inventory.read_text())
    data["cluster"]["talosconfig"] = "/nonexistent/talosconfig"
    fleet_inventory.write_text(yaml.safe_dump(data))
    call(fleet_tasks.status, node="92", json=True)
    (row,) = rows_of(capsys)
    assert row["error"] == "no talosconfig at /nonexistent/talosconfig (inv talos.genconfig)"
    assert fake_cli.calls == []


# --- pi.run ------------------------------------------------------------------------------------


def test_run_all_collects_output_and_exit_codes(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: Any
) -> None:
    sshd_fleet.host(94).set_fake("fail", "boom\n")
    cmd = 'if [ -e "$DOMUM_FAKE_ROOT/fail" ]; then cat "$DOMUM_FAKE_ROOT/fail" >&2; exit 5; fi; hostname'
    with pytest.raises(Exit) as exc:
        call(fleet_tasks.run, cmd=cmd, all_=True, json=True)
    assert exc.value.code == 1
    assert "pi.run: 1 of 3 host(s) failed" in str(exc.value.message)
    assert "domum-zigbee: exit code 5: boom" in str(exc.value.message)
    results = {r["host"]: r for r in rows_of(capsys)}
    assert [results[h]["status"] for h in ("domum-dns", "domum-zigbee", "domum-edge")] == [
        "ok",
        "failed",
        "ok",
    ]
    assert results["domum-dns"]["stdout"].strip() == os.uname().nodename
    assert (
        results["domum-zigbee"]["exit_code"] == 5 and results["domum-zigbee"]["stderr"] == "boom\n"
    )


def test_run_text_output_and_success(fleet_inventory: Path, capsys: Any) -> None:
    call(fleet_tasks.run, cmd="echo from-$((90+3))", node="93")
    out = capsys.readouterr().out
    assert "── domum-dns (127.0.0.93): ok" in out and "from-93" in out and "pi.run" in out


def test_run_refuses_unknown_host_key_naming_enroll(
    fleet_inventory: Path, sshd_fleet: SshdFleet
) -> None:
    drop_known(sshd_fleet, 95)
    with pytest.raises(Exit) as exc:
        call(fleet_tasks.run, cmd="touch $DOMUM_FAKE_ROOT/ran", all_=True, json=True)
    assert "inv pi.enroll --node 95" in str(exc.value.message)
    assert not (sshd_fleet.host(95).fake_root / "ran").exists()
    assert (sshd_fleet.host(93).fake_root / "ran").exists()


def test_run_dry_run_json_runs_nothing(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: Any
) -> None:
    call(fleet_tasks.run, cmd="touch $DOMUM_FAKE_ROOT/ran", all_=True, dry_run=True, json=True)
    (fanout,) = json.loads(capsys.readouterr().out)
    assert fanout["kind"] == "fanout" and fanout["parallel"] == 6  # ssh.parallel
    assert [[s["host"] for s in lane] for lane in fanout["lanes"]] == [
        ["127.0.0.93"], ["127.0.0.94"], ["127.0.0.95"]]  # fmt: skip
    assert {s["kind"] for lane in fanout["lanes"] for s in lane} == {"ssh"}
    assert not any((sshd_fleet.host(i).fake_root / "ran").exists() for i in (93, 94, 95))


def test_run_as_a_subprocess_fails_with_one_line(fleet_inventory: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "pi.run", "--node", "93", "--cmd", "exit 3"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ}, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[0] == "domum: pi.run: 1 of 1 host(s) failed"


# --- pi.update ---------------------------------------------------------------------------------


def test_update_reports_upgrades_and_reboot(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: Any
) -> None:
    sshd_fleet.host(94).set_fake("apt/upgradable", "libc6\nlinux-image-rpi-v8\n")
    sshd_fleet.host(95).set_fake("apt/upgradable", "openssl\n")
    call(fleet_tasks.update, all_=True, parallel=2, json=True)
    report = {r["host"]: r for r in rows_of(capsys)}
    assert report["domum-dns"] == {"host": "domum-dns", "ok": True, "upgraded": 0, "packages": [],
                                 "reboot_required": False, "reason": ""}  # fmt: skip
    assert report["domum-zigbee"]["upgraded"] == 2
    assert report["domum-zigbee"]["packages"] == ["libc6", "linux-image-rpi-v8"]
    assert report["domum-zigbee"]["reboot_required"] is True
    assert (report["domum-edge"]["packages"], report["domum-edge"]["reboot_required"]) == (
        ["openssl"],
        False,
    )
    calls = sshd_fleet.host(94).read_fake("apt/calls").splitlines()
    assert calls[0].endswith(" update") and calls[1].endswith(" full-upgrade")
    assert "--force-confold" in calls[1] and "-y" in calls[1].split()


def test_update_failure_on_one_host_does_not_stop_the_others(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: Any
) -> None:
    sshd_fleet.host(93).set_fake("apt/fail", "Could not get lock /var/lib/dpkg/lock-frontend\n")
    sshd_fleet.host(95).set_fake("apt/upgradable", "curl\n")
    with pytest.raises(Exit) as exc:
        call(fleet_tasks.update, all_=True)
    assert exc.value.code == 1
    assert "domum-dns: exit code 100: E: Could not get lock" in str(exc.value.message)
    assert "curl" in capsys.readouterr().out
    assert sshd_fleet.host(95).read_fake("apt/upgradable") == ""  # 95 was upgraded
    assert "full-upgrade" not in sshd_fleet.host(93).read_fake("apt/calls")


def test_update_dry_run_json(fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: Any) -> None:
    call(fleet_tasks.update, node="94", dry_run=True, json=True)
    (fanout,) = json.loads(capsys.readouterr().out)
    assert fanout["kind"] == "fanout" and fanout["parallel"] == 1
    (lane,) = fanout["lanes"]
    assert [s["kind"] for s in lane] == ["ssh"] * 3
    assert sshd_fleet.host(94).read_fake("apt/calls") == ""


# --- pi.reboot ---------------------------------------------------------------------------------


def test_reboot_wait_until_new_boot_id(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: Any
) -> None:
    h = sshd_fleet.host(93)
    before = h.read_fake("proc/sys/kernel/random/boot_id")
    h.set_fake("run/reboot-required", "x\n")
    call(fleet_tasks.reboot, node="93", wait=True, timeout=30, json=True)
    out = json.loads(capsys.readouterr().out)
    assert out["rebooted"] and out["waited"]
    assert h.read_fake("reboots") == "reboot\n"
    assert h.read_fake("proc/sys/kernel/random/boot_id") != before
    assert not (h.fake_root / "run/reboot-required").exists()


def test_reboot_wait_gives_up_at_the_deadline(fleet_inventory: Path, sshd_fleet: SshdFleet) -> None:
    sshd_fleet.host(95).set_fake("reboot_delay", "60\n")  # never comes back within the deadline
    with pytest.raises(Exit) as exc:
        call(fleet_tasks.reboot, node="95", wait=True, timeout=3)
    assert "gave up after 3s waiting for domum-edge to come back on SSH" in str(exc.value.message)


def test_reboot_dry_run_reads_boot_id_but_does_not_reboot(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: Any
) -> None:
    h = sshd_fleet.host(94)
    call(fleet_tasks.reboot, node="94", wait=True, dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert [s["kind"] for s in steps] == ["ssh", "wait"]
    assert h.read_fake("proc/sys/kernel/random/boot_id").strip() in steps[1]["probe"]["command"]
    assert h.read_fake("reboots") == ""


def test_reboot_needs_a_node(fleet_inventory: Path) -> None:
    with pytest.raises(Exit) as exc:
        call(fleet_tasks.reboot)
    assert exc.value.code == 2 and "give --node N" in str(exc.value.message)


# --- pi.enroll ---------------------------------------------------------------------------------


def keygen_fingerprint(pub: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[1]


def test_enroll_adds_unknown_key_after_showing_fingerprint(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: Any
) -> None:
    drop_known(sshd_fleet, 94)
    h = sshd_fleet.host(94)
    fp = keygen_fingerprint(h.dir / "hostkey.pub")
    # No terminal and no --yes: refused, file untouched.
    before = sshd_fleet.known_hosts.read_text()
    with pytest.raises(Exit) as exc:
        call(fleet_tasks.enroll, node="94")
    assert exc.value.code == 4
    assert sshd_fleet.known_hosts.read_text() == before
    assert f"domum-zigbee presents ssh-ed25519 {fp}" in capsys.readouterr().err
    # --yes: added, and SSH now works.
    call(fleet_tasks.enroll, node="94", yes=True)
    assert f"{h.known_hosts_name} {h.host_pub}\n" in sshd_fleet.known_hosts.read_text()
    assert sshd_fleet.known_hosts.read_text().startswith(before)
    call(fleet_tasks.run, node="94", cmd="true")
    # Again: nothing to do.
    capsys.readouterr()
    call(fleet_tasks.enroll, node="94", dry_run=True)
    assert "nothing to do" in capsys.readouterr().out


def test_enroll_changed_key_shows_both_and_replaces(
    fleet_inventory: Path, sshd_fleet: SshdFleet, tmp_path: Path, capsys: Any
) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    h = sshd_fleet.host(95)
    fake_pub = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    sshd_fleet.known_hosts.write_text(
        sshd_fleet.known_hosts.read_text().replace(h.host_pub, fake_pub)
    )
    old_fp = keygen_fingerprint(other.with_suffix(".pub"))
    new_fp = keygen_fingerprint(h.dir / "hostkey.pub")
    # Without --replace: refused (exit 4) showing both fingerprints, in the dry run too.
    for dry_run in (True, False):
        with pytest.raises(Exit) as exc:
            call(fleet_tasks.enroll, node="95", yes=True, dry_run=dry_run)
        message = str(exc.value.message)
        assert exc.value.code == 4 and "host key CHANGED" in message
        assert old_fp in message and new_fp in message and "--replace" in message
    assert fake_pub in sshd_fleet.known_hosts.read_text()
    call(fleet_tasks.enroll, node="95", replace=True, dry_run=True, json=True)
    (step,) = json.loads(capsys.readouterr().out)
    assert step["kind"] == "write" and step["destructive"] is True
    assert step["path"] == str(sshd_fleet.known_hosts)
    assert fake_pub in sshd_fleet.known_hosts.read_text()  # dry run wrote nothing
    call(fleet_tasks.enroll, node="95", replace=True, yes=True)
    err = capsys.readouterr().err
    assert f"CHANGED: {sshd_fleet.known_hosts} has {old_fp}" in err
    assert "host key replaced in" in err
    text = sshd_fleet.known_hosts.read_text()
    assert fake_pub not in text and f"{h.known_hosts_name} {h.host_pub}" in text
    assert len(text.splitlines()) == 6


def test_enroll_refuses_talos_and_reports_unreachable(
    fleet_inventory: Path, sshd_fleet: SshdFleet
) -> None:
    with pytest.raises(Exit) as exc:
        call(fleet_tasks.enroll, node="91")
    assert exc.value.code == 2 and "runs Talos, which has no SSH" in str(exc.value.message)
    with sshd_fleet.down(93), pytest.raises(Exit) as exc:
        call(fleet_tasks.enroll, node="93", yes=True)
    assert exc.value.code == 1 and "domum-dns (127.0.0.93:" in str(exc.value.message)
    assert "cannot read its host key" in str(exc.value.message)


def test_enroll_dry_run_plans_as_for_a_fresh_host_when_unreachable(
    fleet_inventory: Path, sshd_fleet: SshdFleet, capsys: Any
) -> None:
    before = sshd_fleet.known_hosts.read_text()
    with sshd_fleet.down(93):
        call(fleet_tasks.enroll, node="93", dry_run=True, json=True)
    out, err = capsys.readouterr()
    steps = json.loads(out)
    assert [s["action"] for s in steps] == ["enroll.read-host-key", "enroll.add-host-key"]
    assert "cannot read its host key" in err and "planned as for a fresh host" in err
    assert sshd_fleet.known_hosts.read_text() == before


def test_status_host_that_never_answers_is_a_row_without_traceback(
    fleet_inventory: Path, fake_cli_absent: Any
) -> None:
    """A Pi half-booted (TCP accepts, no SSH banner): a row, and no paramiko traceback on stderr.
    Paramiko's transport thread logs the banner error; with no handler Python prints it, so this
    runs outside pytest (whose log capture would hide it) and waits for that thread."""
    import socket

    script = (
        "import threading, time, paramiko\n"
        "from invoke import Context\n"
        "from domum_tasks.pi.fleet import tasks as fleet_tasks\n"
        "try:\n"
        "    fleet_tasks.status(Context(), node='93', json=True)\n"
        "except Exception as exc:\n"  # invoke.Exit: the Pi is down, exit 1
        "    print(exc, file=__import__('sys').stderr)\n"
        "end = time.monotonic() + 20\n"
        "while time.monotonic() < end and any(\n"
        "        isinstance(t, paramiko.Transport) for t in threading.enumerate()):\n"
        "    time.sleep(0.1)\n"
    )
    with socket.socket() as silent:
        silent.bind(("127.0.0.93", 0))
        silent.listen(4)
        data = yaml.safe_load(fleet_inventory.read_text())
        data["ssh"]["connect_timeout_s"] = 1
        data["nodes"][93]["ssh_port"] = silent.getsockname()[1]
        fleet_inventory.write_text(yaml.safe_dump(data, sort_keys=False))
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO, capture_output=True, text=True, env={**os.environ}, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["node"] == 93 and row["reachable"] is False
    # no banner within the timeout: "SSH error: Error reading SSH protocol banner" (or, on a
    # loaded machine, a connect timeout); either way one line naming the host, and exit 1
    assert row["error"] and "\n" not in row["error"]
    assert proc.stderr.strip() == f"domum: 1 of 1 Pi(s) down: domum-dns: {row['error']}"
