"""etcd snapshot verification: pure checks, a real etcd snapshot, and `inv talos.etcd-snapshot`."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from domum_tasks.errors import VerifyError
from domum_tasks.talos.ops import etcd
from tests.test_talos_ops_exec import cluster_dir  # noqa: F401  (fixture)

CLIENT_PORT, PEER_PORT = 23791, 23792


def db(pages: int = 4) -> bytes:
    return bytes(range(256)) * 2 * pages  # 512-byte pages, not all zero


def test_verify_bytes_ok_and_info() -> None:
    data = etcd.with_trailer(db())
    info = etcd.verify_snapshot_bytes(data)
    assert info.size == len(data) == 4 * 512 + 32


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:-1], "size"),  # truncated
        (lambda d: d[:-32], "size"),  # trailer stripped
        (lambda d: d[:100] + b"X" + d[101:], "trailer mismatch"),  # bit rot
        (lambda d: d[:-32] + bytes(32), "trailer mismatch"),  # wrong trailer
        (lambda d: b"", "size 0"),
    ],
)
def test_verify_rejects_corruption(mutate, message: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = mutate(etcd.with_trailer(db()))
    with pytest.raises(VerifyError, match=message):
        etcd.verify_snapshot_bytes(bad)
    f = tmp_path / "bad.db"
    f.write_bytes(bad)
    with pytest.raises(VerifyError, match=message):
        etcd.verify_snapshot_file(f)


def test_finalize_never_leaves_bad_file_under_final_name(tmp_path: Path) -> None:
    part, final = tmp_path / ".x.part", tmp_path / "x.db"
    part.write_bytes(etcd.with_trailer(db())[:-1] + b"\0")
    with pytest.raises(VerifyError):
        etcd.finalize_snapshot(part, final)
    assert not part.exists() and not final.exists()
    part.write_bytes(etcd.with_trailer(db()))
    etcd.finalize_snapshot(part, final)
    assert final.exists() and not part.exists()


@pytest.fixture(scope="module")
def real_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Start Debian's etcd on loopback, write keys, `etcdctl snapshot save` (trailer included)."""
    if not shutil.which("etcd") or not shutil.which("etcdctl"):
        pytest.skip(
            "etcd-server/etcd-client not installed (apt-get install etcd-server etcd-client)"
        )
    tmp = tmp_path_factory.mktemp("etcd")
    url, peer = f"http://127.0.0.1:{CLIENT_PORT}", f"http://127.0.0.1:{PEER_PORT}"
    log = (tmp / "etcd.log").open("w")
    proc = subprocess.Popen(
        [
            "etcd",
            "--name",
            "t",
            "--data-dir",
            str(tmp / "data"),
            "--listen-client-urls",
            url,
            "--advertise-client-urls",
            url,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"t={peer}",
            "--listen-metrics-urls",
            "",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {**os.environ, "ETCDCTL_API": "3"}
    ctl = ["etcdctl", f"--endpoints={url}"]
    try:
        for _ in range(100):
            if (
                subprocess.run(
                    [*ctl, "endpoint", "health"], env=env, capture_output=True
                ).returncode
                == 0
            ):
                break
            time.sleep(0.1)
        for i in range(20):
            subprocess.run(
                [*ctl, "put", f"/registry/k{i}", "v" * 200],
                env=env,
                check=True,
                capture_output=True,
            )
        raw = tmp / "raw.db"
        subprocess.run(
            [*ctl, "snapshot", "save", str(raw)], env=env, check=True, capture_output=True
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    # The snapshot stream already ends with the sha256 trailer, and etcdctl keeps it: what
    # `etcdctl snapshot save` writes is byte-for-byte the format `talosctl etcd snapshot` writes.
    data = raw.read_bytes()
    assert etcd.with_trailer(data[:-32]) == data
    yield raw


def test_real_etcd_snapshot_verifies(real_snapshot: Path) -> None:
    info = etcd.verify_snapshot_file(real_snapshot)
    assert info.size == real_snapshot.stat().st_size and info.size % 512 == 32
    # etcdctl reads the same file as a database (it ignores the trailer)
    out = subprocess.run(
        ["etcdctl", "snapshot", "status", str(real_snapshot), "-w", "json"],
        env={**os.environ, "ETCDCTL_API": "3"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"totalKey"' in out.stdout


def test_task_saves_and_verifies_real_snapshot(
    real_snapshot: Path,
    fake_cli,
    cluster_dir: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    from domum_tasks.talos.ops.tasks import etcd_snapshot

    fake_cli.set_state(etcd_snapshot_source=str(real_snapshot))
    etcd_snapshot(Context(), out="backups/etcd.snapshot")
    out = cluster_dir / "backups" / "etcd.snapshot"
    assert out.read_bytes() == real_snapshot.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600  # it holds every Kubernetes Secret
    assert not (cluster_dir / "backups" / ".etcd.snapshot.unverified").exists()
    assert "snapshot OK" in capsys.readouterr().out
    (call,) = fake_cli.calls
    assert call[:3] == ["talosctl", "etcd", "snapshot"] and "127.0.0.90" in call


def test_task_rejects_corrupted_snapshot(
    real_snapshot: Path,
    fake_cli,
    cluster_dir: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from domum_tasks.talos.ops.tasks import etcd_snapshot

    data = bytearray(real_snapshot.read_bytes())
    data[4096] ^= 0xFF  # one flipped byte inside the database: size still fits, hash does not
    bad = tmp_path / "bad.snapshot"
    bad.write_bytes(bytes(data))
    fake_cli.set_state(etcd_snapshot_source=str(bad))
    with pytest.raises(Exit) as exc:
        etcd_snapshot(Context(), out="backups/etcd.snapshot", node="91")
    assert exc.value.code == 1 and "trailer mismatch" in str(exc.value.message)
    assert not (cluster_dir / "backups" / "etcd.snapshot").exists()
    assert list((cluster_dir / "backups").iterdir()) == []


def test_task_dry_run_json(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from domum_tasks.talos.ops.tasks import etcd_snapshot

    etcd_snapshot(Context(), out="b/e.db", dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert [s["kind"] for s in steps] == ["local", "cmd", "local", "local"]
    assert steps[-1]["finally"] is True and not (cluster_dir / "b").exists()
