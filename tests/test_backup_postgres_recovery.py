"""`backup.restore` and `backup.drill` of a `postgres` job, against real PostgreSQL 15 and real
restic: restore writes the pg_dumpall script into --to (the operator loads it, as the task
says how); the drill loads it into a throw-away server of its own (unix socket in a temp dir,
no TCP) and checks every database, table and row count the script holds."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.backup_lab import Lab, _session_members, kill_tree, restic, snapshots, wait_for
from tests.pg_lab import PgServer, pg_pair  # noqa: F401  (fixture)
from tests.test_backup_postgres import TRAILER, pod, seed, setup_cluster

pytestmark = pytest.mark.integration


def _snapshot(lab: Lab, src: PgServer) -> str:
    seed(src)
    setup_cluster(lab, src, [pod("postgres-1", "primary")])
    res = lab.inv("backup.snapshot")
    assert res.returncode == 0, res.stdout + res.stderr
    [snap] = snapshots(lab.repo("a"), "pg")
    return str(snap["id"])


def _put_dump(lab: Lab, text: str) -> None:
    """A complete-tagged snapshot of job pg holding `text` as /pg.sql, as Domum saves one."""
    subprocess.run(
        ["restic", "backup", "--quiet", "--stdin", "--stdin-filename", "pg.sql", "--host",
         "domum", "--tag", "domum", "--tag", "job=pg", "--tag", "complete"],
        input=text, text=True, check=True, capture_output=True,
        env={**os.environ, "RESTIC_REPOSITORY": str(lab.repo("a")),
             "RESTIC_PASSWORD": "correct horse battery staple"},
    )  # fmt: skip


def _pg_leftovers() -> list[str]:
    """Throw-away servers or their directories the drill left behind."""
    procs = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmd.read_bytes()
            if b"domum-pgdrill-" in argv:
                procs.append(argv.replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return procs


def test_restore_writes_the_dump_and_says_how_to_load_it(
    lab: Lab, pg_pair: tuple[PgServer, PgServer]
) -> None:
    src, fresh = pg_pair
    sid = _snapshot(lab, src)
    to = lab.root / "restored"
    res = lab.inv("backup.restore", "--job", "pg", "--to", str(to))
    assert res.returncode == 0, res.stdout + res.stderr
    dump = to / "pg.sql"
    assert sorted(p.name for p in to.iterdir()) == ["pg.sql"]  # no part file left
    assert dump.read_text() == restic(lab.repo("a"), "--no-lock", "dump", sid, "/pg.sql").stdout
    assert f"psql -X -d postgres -f {dump}" in res.stdout
    assert "database(s) (app, postgres)" in res.stdout and "500 row(s)" in res.stdout
    # the operator's step, as printed, into a fresh cluster
    subprocess.run(
        ["psql", "-X", "-q", "-d", "postgres", "-f", str(dump)],
        env={**os.environ, **fresh.env()}, capture_output=True, check=True,
    )  # fmt: skip
    query = "SELECT count(*), md5(string_agg(body, ',' ORDER BY id)) FROM notes"
    assert fresh.psql(query, db="app") == src.psql(query, db="app")
    # into a non-empty directory only with --force, which replaces pg.sql and nothing else
    (to / "other.txt").write_text("mine")
    refused = lab.inv("backup.restore", "--job", "pg", "--to", str(to))
    assert refused.returncode == 4, refused.stderr
    forced = lab.inv("backup.restore", "--job", "pg", "--to", str(to), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (to / "other.txt").read_text() == "mine"


def test_drill_loads_the_dump_into_a_throwaway_server(
    lab: Lab, pg_pair: tuple[PgServer, PgServer]
) -> None:
    src, _ = pg_pair
    _snapshot(lab, src)
    res = lab.inv("backup.drill", "--job", "pg")
    assert res.returncode == 0, res.stdout + res.stderr
    entry = lab.state()["drill"]["pg"]
    assert entry["ok"] is True and entry["partial"] is False and entry["last_success"]
    assert "loaded into a throw-away PostgreSQL 15" in entry["message"], entry["message"]
    assert "2 database(s) (app, postgres), 1 table(s), 500 row(s)" in entry["message"]
    assert _pg_leftovers() == []
    assert not (lab.state_dir / "drill" / "pg").exists()
    metrics = lab.metrics.read_text()
    assert 'domum_backup_last_drill_success_timestamp_seconds{job="pg"} 0\n' not in metrics


def test_drill_fails_when_the_dump_does_not_load(
    lab: Lab, pg_pair: tuple[PgServer, PgServer]
) -> None:
    src, _ = pg_pair
    sid = _snapshot(lab, src)
    good = restic(lab.repo("a"), "--no-lock", "dump", sid, "/pg.sql").stdout
    # a whole script (trailer and all) whose data the server rejects: a row of the wrong type
    lines = good.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("COPY public.notes"))
    lines.insert(at + 1, "not-a-number\tx\n")
    _put_dump(lab, "".join(lines))
    res = lab.inv("backup.drill", "--job", "pg")
    assert res.returncode == 1, res.stdout + res.stderr
    entry = lab.state()["drill"]["pg"]
    assert entry["ok"] is False and "does not load" in entry["message"], entry["message"]
    assert "invalid input syntax" in entry["message"]
    assert _pg_leftovers() == []


def test_drill_fails_on_a_cut_short_dump(lab: Lab, pg_pair: tuple[PgServer, PgServer]) -> None:
    src, _ = pg_pair
    sid = _snapshot(lab, src)
    good = restic(lab.repo("a"), "--no-lock", "dump", sid, "/pg.sql").stdout
    assert TRAILER in good
    _put_dump(lab, good[: len(good) // 2])
    res = lab.inv("backup.drill", "--job", "pg")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "not a whole pg_dumpall script" in lab.state()["drill"]["pg"]["message"]


def test_drill_without_local_postgres_is_partial(
    lab: Lab, pg_pair: tuple[PgServer, PgServer]
) -> None:
    """No PostgreSQL binaries: the dump's structure is checked and the drill says it was
    partial; its success time does not move (the staleness alert still asks for a real one).
    The binaries are hidden in a mount namespace of the task's own (tmpfs over Debian's
    /usr/lib/postgresql, which /usr/local/bin's links point into)."""
    src, _ = pg_pair
    _snapshot(lab, src)
    hide = 'mount -t tmpfs none /usr/lib/postgresql && exec "$@"'
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", hide, "sh", "true"],
        capture_output=True, text=True,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot hide the PostgreSQL binaries (unshare -m): {probe.stderr.strip()}")
    from tests.backup_lab import INV, REPO

    res = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", hide, "sh",
         INV, "backup.drill", "--job", "pg"],
        capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PARTIAL drill" in res.stderr and "no local PostgreSQL" in res.stderr, res.stderr
    entry = lab.state()["drill"]["pg"]
    assert entry["partial"] is True and "last_success" not in entry
    assert "2 database(s) (app, postgres), 1 table(s), 500 row(s)" in entry["message"]


@pytest.mark.parity("backup.restore")
def test_restore_of_a_postgres_job_parity(
    lab: Lab, pg_pair: tuple[PgServer, PgServer], plan_parity: Any
) -> None:
    from domum_tasks.backup import tasks as T

    src, _ = pg_pair
    _snapshot(lab, src)
    out = lab.root / "restored"
    [plan] = plan_parity(T.restore, job="pg", to=str(out))
    [job] = [s for s in plan if s["kind"] == "job"]  # restic in a process group of its own
    assert job["steps"][0]["argv"][-5:-3] == ["dump", "--target"]
    assert sorted(p.name for p in out.iterdir()) == ["pg.sql"]


@pytest.mark.parity("backup.drill")
def test_drill_of_a_postgres_job_parity(
    lab: Lab, pg_pair: tuple[PgServer, PgServer], plan_parity: Any
) -> None:
    from domum_tasks.backup import tasks as T

    src, _ = pg_pair
    _snapshot(lab, src)
    plan_parity(T.drill)
    assert lab.state()["drill"]["pg"]["ok"] is True


def _server_running() -> bool:
    """The drill's throw-away postgres is up (its data directory is in its argv)."""
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmd.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and any(b"domum-pgdrill-" in a for a in argv):
            return True
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_during_the_load_stops_the_throwaway_server(
    lab: Lab, pg_pair: tuple[PgServer, PgServer], sig: signal.Signals
) -> None:
    src, _ = pg_pair
    src.psql("CREATE DATABASE big")
    src.psql(  # enough rows that the load is still running when the signal comes
        "CREATE TABLE t (id int, body text);"
        "INSERT INTO t SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 400000) i;",
        db="big",
    )
    _snapshot(lab, src)
    proc = lab.spawn("backup.drill", "--job", "pg")
    try:
        wait_for(_server_running, timeout=120, what="the drill's throw-away server")
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
        left = _session_members(proc.pid)
    finally:
        kill_tree(proc.pid)
    assert proc.returncode == 128 + sig, err
    assert "drill of pg TERMINATED" in err, err
    assert left == [] and _pg_leftovers() == [] and not _server_running()
    assert not list(Path(tempfile.gettempdir()).glob("domum-pgdrill-*"))
    entry = lab.state()["drill"]["pg"]
    assert entry["ok"] is False and entry["message"] == f"terminated by {sig.name}"
