"""The `postgres` backup kind against a real PostgreSQL 15 (Debian's binaries) and real restic.

Only the transport is a double: tests/fakes/fake_kubectl_exec.py answers `kubectl get pods`
from a pod list and, for `kubectl exec POD -c postgres -- pg_dumpall`, checks the argv the way
kubectl would and exec's the real pg_dumpall against the throwaway server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.backup_lab import Lab, restic, snapshots
from tests.pg_lab import SUPERUSER, PgServer, pg_pair  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration

FAKE = Path(__file__).resolve().parent / "fakes" / "fake_kubectl_exec.py"
TRAILER = "-- PostgreSQL database cluster dump complete"


def pod(name: str, role: str, ns: str = "databases", cluster: str = "postgres") -> dict[str, Any]:
    labels = {"cnpg.io/cluster": cluster, "cnpg.io/instanceRole": role, "role": role}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "postgres"}]},
        "status": {"phase": "Running"},
    }


def setup_cluster(
    lab: Lab, server: PgServer, pods: list[dict[str, Any]], user: str = SUPERUSER
) -> Path:
    """The fake kubectl in Domum's bin dir, the "API server"'s pods, a kubeconfig, the job."""
    bindir = Path(os.environ["DOMUM_BIN_DIR"])
    bindir.mkdir(parents=True, exist_ok=True)
    (bindir / "kubectl").write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    (bindir / "kubectl").chmod(0o755)
    (lab.root / "pods.json").write_text(json.dumps(pods))
    kubeconfig = lab.root / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    log = lab.root / "kubectl.log"
    lab.mp.setenv("FAKE_KUBE_PODS", str(lab.root / "pods.json"))
    lab.mp.setenv("FAKE_KUBE_LOG", str(log))
    for k, v in server.env(user).items():
        lab.mp.setenv(k, v)
    lab.data["cluster"]["kubeconfig"] = str(kubeconfig)
    lab.job("pg", kind="postgres", targets=["a"])
    return log


def seed(server: PgServer) -> None:
    server.psql("CREATE DATABASE app")
    server.psql(
        "CREATE TABLE notes (id int PRIMARY KEY, body text);"
        "INSERT INTO notes SELECT i, md5(i::text) FROM generate_series(1, 500) i;",
        db="app",
    )
    server.psql("CREATE ROLE linkding LOGIN PASSWORD 'x'")


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_dump_from_the_primary_restores_into_a_fresh_server(
    lab: Lab, pg_pair: tuple[PgServer, PgServer]
) -> None:
    src, fresh = pg_pair
    seed(src)
    log = setup_cluster(lab, src, [pod("postgres-2", "replica"), pod("postgres-1", "primary")])
    res = lab.inv("backup.snapshot")
    assert res.returncode == 0, res.stdout + res.stderr
    [snap] = snapshots(lab.repo("a"), "pg")
    assert "complete" in snap["tags"] and snap["paths"] == ["/pg.sql"]
    execs = [c for c in calls(log) if "exec" in c]
    assert len(execs) == 1
    tail = execs[0][execs[0].index("exec") :]
    assert tail == ["exec", "postgres-1", "-c", "postgres", "--", "pg_dumpall"]
    assert execs[0][:4] == ["--kubeconfig", str(lab.root / "kubeconfig"), "-n", "databases"]
    sql = restic(lab.repo("a"), "--no-lock", "dump", snap["id"], "/pg.sql").stdout
    assert TRAILER in sql
    dump = lab.root / "restored.sql"
    dump.write_text(sql)
    # the SQL of pg_dumpall is restored with psql into the postgres database of a new cluster
    # (the CREATE ROLE of its own superuser fails there, as pg_dumpall's docs say it may)
    subprocess.run(
        ["psql", "-X", "-q", "-d", "postgres", "-f", str(dump)],
        env={**os.environ, **fresh.env()},
        capture_output=True,
        check=True,
    )
    query = "SELECT count(*), md5(string_agg(body, ',' ORDER BY id)) FROM notes"
    assert fresh.psql(query, db="app") == src.psql(query, db="app")
    assert "linkding" in fresh.psql("SELECT rolname FROM pg_roles")


def test_a_dump_failing_half_way_saves_no_snapshot_and_fails_the_job(
    lab: Lab, pg_pair: tuple[PgServer, PgServer]
) -> None:
    """pg_dumpall as a role that may read the globals but not one table: it has written the
    roles and part of the data when pg_dump fails. A pipe into `restic --stdin` would save that
    truncated dump; `--stdin-from-command` saves nothing."""
    src, _ = pg_pair
    seed(src)
    src.psql("CREATE ROLE weak LOGIN; GRANT CONNECT ON DATABASE app TO weak")
    src.psql("CREATE TABLE secret (x int); GRANT SELECT ON notes TO weak", db="app")
    direct = subprocess.run(
        ["pg_dumpall", "--no-role-passwords"],
        env={**os.environ, **src.env("weak")},
        capture_output=True,
        text=True,
    )
    assert direct.returncode != 0 and "CREATE ROLE" in direct.stdout  # it did start writing
    setup_cluster(lab, src, [pod("postgres-1", "primary")], user="weak")
    res = lab.inv("backup.snapshot")
    assert res.returncode == 1, res.stdout + res.stderr
    assert snapshots(lab.repo("a"), "pg") == []
    run = lab.state()["jobs"]["pg"]["last_run"]
    assert run["status"] == "failed" and "last_success" not in lab.state()["jobs"]["pg"]
    assert "permission denied" in run["message"]


def test_server_down_saves_no_snapshot(lab: Lab, pg_pair: tuple[PgServer, PgServer]) -> None:
    src, _ = pg_pair
    setup_cluster(lab, src, [pod("postgres-1", "primary")])
    src.stop()
    res = lab.inv("backup.snapshot")
    assert res.returncode == 1
    assert snapshots(lab.repo("a"), "pg") == []
    assert "pg_dumpall" in res.stdout + res.stderr


def test_no_primary_is_a_failure_naming_the_cluster(
    lab: Lab, pg_pair: tuple[PgServer, PgServer]
) -> None:
    src, _ = pg_pair
    log = setup_cluster(lab, src, [pod("postgres-1", "replica"), pod("postgres-2", "replica")])
    res = lab.inv("backup.snapshot")
    assert res.returncode == 1
    assert "databases/postgres: expected one running primary" in res.stdout + res.stderr
    assert not [c for c in calls(log) if "exec" in c]
    assert snapshots(lab.repo("a"), "pg") == []


def test_dry_run_shows_restic_reading_the_command(
    lab: Lab, pg_pair: tuple[PgServer, PgServer]
) -> None:
    src, _ = pg_pair
    setup_cluster(lab, src, [pod("postgres-1", "primary")])
    res = lab.inv("backup.snapshot", "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "--stdin-from-command" in text and "pg.sql" in text
    assert "cnpg.io/cluster=postgres,cnpg.io/instanceRole=primary" in text
