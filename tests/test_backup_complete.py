"""issue 16 #1, #2, #3 with real restic: completeness marked positively, partial snapshots that do
not count, and another client's live lock waited for and named, never removed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.backup_lab import Lab, restic, restic_env, snapshots, wait_for
from tests.test_backup_faults import ok_job, wrapper_dir

pytestmark = pytest.mark.integration

ONLY_LAST_1 = {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}


def states(lab: Lab) -> list[str]:
    out = []
    for s in snapshots(lab.repo("a"), "pis"):
        tags = set(s["tags"])
        out.append("complete" if "complete" in tags else "partial" if "partial" in tags else "?")
    return out


def argvs(plan: list[dict[str, Any]]) -> list[list[str]]:
    out: list[list[str]] = []
    for s in plan:
        out.append(s.get("argv") or (s.get("args") or {}).get("argv") or [])
        out += argvs(s.get("steps", []))
        out += argvs([x for lane in s.get("lanes", []) for x in lane])
    return out


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"
)
def test_partial_runs_then_prune_keep_the_only_complete_snapshot(lab: Lab, tmp_path: Path) -> None:
    """#2: one good run, three runs that restic ends with exit 3, then `backup.prune --yes`
    with keep_last 1: the complete snapshot stays, restore and drill still work."""
    lab.job(
        "pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"], retention=ONLY_LAST_1
    )
    assert lab.inv("backup.snapshot").returncode == 0
    [good] = snapshots(lab.repo("a"), "pis")
    secret = lab.src / "d1" / "unreadable"
    secret.write_text("no one may read me\n")
    secret.chmod(0)
    wrapper_dir(  # restic without CAP_DAC_OVERRIDE: real exit 3 on the 0000 file
        lab,
        'case " $* " in *" backup "*) exec setpriv --bounding-set=-dac_override,-dac_read_search '
        + str(shutil.which("restic"))
        + ' "$@" ;; esac',
    )
    for _ in range(3):
        run = lab.inv("backup.snapshot")
        assert run.returncode == 1 and "INCOMPLETE" in run.stderr and "not counted" in run.stderr
    assert states(lab) == ["complete", "partial", "partial", "partial"]

    listed = json.loads(lab.inv("backup.list", "--json").stdout)[0]
    assert [s["state"] for s in listed["snapshots"]] == states(lab)
    assert listed["newest"]["id"] == good["short_id"]  # the newest COMPLETE one
    table = lab.inv("backup.list").stdout
    assert "1 (+3 partial)" in table

    dry = lab.inv("backup.prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    run = lab.inv("backup.prune", "--yes")
    assert run.returncode == 0, run.stderr
    left = snapshots(lab.repo("a"), "pis")
    assert left[0]["short_id"] == good["short_id"]
    assert states(lab) == ["complete", "partial"]  # the newest partial stays for inspection
    assert restic(lab.repo("a"), "check").returncode == 0

    out = tmp_path / "restored"
    res = lab.inv("backup.restore", "--job", "pis", "--to", str(out))
    assert res.returncode == 0 and good["short_id"] in res.stdout, res.stderr
    drill = lab.inv("backup.drill", "--job", "pis")
    assert drill.returncode == 0, drill.stderr


def test_a_failing_tag_step_leaves_nothing_counted_complete(lab: Lab) -> None:
    """#3: the backup exits 0 but marking it complete fails: the snapshot was saved `partial`
    by the backup call itself, so nothing incomplete-or-unconfirmed counts, and the job says so."""
    ok_job(lab)
    wrapper_dir(
        lab, 'case " $* " in *" tag "*) echo "Fatal: injected tag failure" >&2; exit 1;; esac'
    )
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1
    assert "saved but NOT marked 'complete'" in run.stderr and "injected tag failure" in run.stderr
    [snap] = snapshots(lab.repo("a"), "pis")
    assert "partial" in snap["tags"] and "complete" not in snap["tags"]
    st = lab.state()["jobs"]["pis"]
    assert st["last_run"]["status"] == "failed" and "last_success" not in st
    listed = json.loads(lab.inv("backup.list", "--json").stdout)[0]
    assert listed["newest"] is None and listed["snapshots"][0]["partial"] is True
    assert lab.inv("backup.drill", "--job", "pis").returncode == 1  # nothing complete to drill


def test_a_killed_tag_step_leaves_nothing_counted_complete(lab: Lab) -> None:
    """#3: the tag step is killed (SIGKILL, as a power cut) before restic rewrote the snapshot."""
    ok_job(lab)
    wrapper_dir(lab, 'case " $* " in *" tag "*) kill -9 $$;; esac')
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1
    [snap] = snapshots(lab.repo("a"), "pis")
    assert "partial" in snap["tags"] and "complete" not in snap["tags"]


def test_restic_tag_rewrites_the_id_and_the_state_names_the_new_one(lab: Lab) -> None:
    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0
    [snap] = snapshots(lab.repo("a"), "pis")
    assert lab.state()["jobs"]["pis"]["last_run"]["snapshots"] == {"a": snap["short_id"]}
    assert snap["original"][:8] != snap["short_id"]
    assert f"a:{snap['short_id']}" in lab.log.read_text()


def test_live_second_client_lock_is_waited_for_named_and_kept(lab: Lab) -> None:
    """#1: another restic client (a backup reading a pipe that stays open) holds a lock. Domum
    waits (--retry-lock), fails "locked" naming that client, never runs `restic unlock`; the
    other client's lock and data survive and its snapshot is good."""
    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0  # one complete snapshot
    env = restic_env(lab.repo("a"))
    other = subprocess.Popen(
        ["restic", "backup", "--stdin", "--stdin-filename", "laptop.txt", "--host", "laptop"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # restic's local backend writes `<id>-tmp-<random>` and renames it: wait for the lock
        def settled() -> list[Path]:
            return [p for p in (lab.repo("a") / "locks").iterdir() if "-tmp-" not in p.name]

        wait_for(lambda: bool(settled()), what="the other lock")
        [lock] = settled()
        holder = f"PID {other.pid} on {socket.gethostname()}"

        plan = json.loads(lab.inv("backup.prune", "--dry-run", "--json").stdout)
        snap_plan = json.loads(lab.inv("backup.snapshot", "--dry-run", "--json").stdout)
        assert not [a for a in argvs(plan) + argvs(snap_plan) if "unlock" in a]

        for _ in range(2):  # backup shares the lock; marking it complete needs it alone
            run = lab.inv("backup.snapshot")
            assert run.returncode == 5, run.stderr
            assert f"locked by {holder}" in run.stderr and "LOCKED" in run.stderr
        assert lab.state()["jobs"]["pis"]["last_run"]["status"] == "locked"
        assert states(lab) == ["complete", "partial", "partial"]

        prune = lab.inv("backup.prune", "--yes")  # the older partial would go: it waits
        assert prune.returncode == 5 and f"locked by {holder}" in prune.stderr, prune.stderr
        verify = lab.inv("backup.verify", "--subset", "1")
        assert verify.returncode == 5 and holder in verify.stderr, verify.stderr
        assert lock.exists() and other.poll() is None  # its lock and the client live on
        assert other.stdin is not None
        other.stdin.write(b"the laptop's data\n")
    finally:
        if other.stdin is not None:
            other.stdin.close()
        other.wait(60)
    assert other.returncode == 0
    theirs = json.loads(restic(lab.repo("a"), "snapshots", "--json", "--host", "laptop").stdout)
    assert len(theirs) == 1
    dump = restic(lab.repo("a"), "dump", theirs[0]["id"], "/laptop.txt")
    assert dump.stdout == "the laptop's data\n"
    assert restic(lab.repo("a"), "check").returncode == 0
    # the lock gone with its client: Domum's next run is complete again
    assert lab.inv("backup.snapshot").returncode == 0
    assert states(lab)[-1] == "complete"
    assert lab.inv("backup.prune", "--yes").returncode == 0
    assert states(lab) == ["complete", "complete"]  # keep_last 3; partial ones gone


def test_a_lock_older_than_30_minutes_is_never_removed(lab: Lab, tmp_path: Path) -> None:
    """#1 as reproduced: a client on another host whose lock is 45 minutes old (paused, or a
    stalled network). restic counts it stale (its own `unlock` removes it, shown on a copy);
    Domum waits, fails naming it, and leaves it in place."""
    from datetime import UTC, datetime, timedelta

    from tests.restic_lockfile import lock_doc, write_lock

    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0
    master = json.loads(restic(lab.repo("a"), "cat", "masterkey").stdout)
    when = datetime.now(UTC) - timedelta(minutes=45)
    sid = write_lock(lab.repo("a"), master, lock_doc(when, host="laptop", user="alice", pid=4242))
    read = json.loads(restic(lab.repo("a"), "cat", "lock", sid).stdout)  # restic checks the MAC
    assert read["hostname"] == "laptop" and read["pid"] == 4242
    assert datetime.fromisoformat(read["time"]) == when
    copy = tmp_path / "copy"
    shutil.copytree(lab.repo("a"), copy)
    assert restic(copy, "unlock").returncode == 0
    assert not list((copy / "locks").iterdir())  # restic's rule: older than 30 min = stale

    run = lab.inv("backup.snapshot")
    assert run.returncode == 5, run.stderr
    assert "locked by PID 4242 on laptop by alice" in run.stderr, run.stderr
    prune = lab.inv("backup.prune", "--yes")
    assert prune.returncode in (0, 5)  # 0 when nothing is to be removed; never an unlock
    assert [p.name for p in (lab.repo("a") / "locks").iterdir()] == [sid]
    assert states(lab) == ["complete", "partial"]


LYING_FORGET = r"""
case " $* " in *" forget "*"--dry-run"*)
  "$REAL" --no-lock snapshots --json --tag complete | python3 -c '
import json, sys
snaps = sorted(json.load(sys.stdin), key=lambda s: s["time"])
print(json.dumps([{"tags": None, "host": "domum", "paths": [], "keep": snaps[:-1],
                   "remove": snaps[-1:], "reasons": []}]))'
  exit 0;;
esac
"""


def test_the_newest_complete_snapshot_stays_whatever_restic_answers(lab: Lab) -> None:
    """#2's rail: a restic whose `forget --dry-run` lists the newest complete snapshot for
    removal is refused by backup.prune (backup.snapshot runs no retention: issue 16 #10)."""
    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0
    wrapper_dir(lab, f"REAL={shutil.which('restic')}\n{LYING_FORGET}")
    run = lab.inv("backup.snapshot")
    assert run.returncode == 0, run.stderr
    assert states(lab) == ["complete", "complete"]
    prune = lab.inv("backup.prune", "--yes")
    assert prune.returncode == 4 and "refusing to prune" in prune.stderr, prune.stderr
    assert states(lab) == ["complete", "complete"]


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"
)
def test_exit_3_with_a_failing_tag_command_is_still_partial(lab: Lab) -> None:
    """#3 as reproduced: restic exits 3 and `restic tag` cannot run (a live reader, a kill).
    The `partial` mark was set by the backup call itself: no second command is needed."""
    ok_job(lab)
    secret = lab.src / "d1" / "unreadable"
    secret.write_text("no one may read me\n")
    secret.chmod(0)
    real = shutil.which("restic")
    wrapper_dir(
        lab,
        'case " $* " in *" tag "*) echo "Fatal: injected tag failure" >&2; exit 1;; '
        '*" backup "*) exec setpriv --bounding-set=-dac_override,-dac_read_search '
        f'{real} "$@" ;; esac',
    )
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1 and "INCOMPLETE" in run.stderr
    [snap] = snapshots(lab.repo("a"), "pis")
    assert "partial" in snap["tags"] and "complete" not in snap["tags"]
    listed = json.loads(lab.inv("backup.list", "--json").stdout)[0]
    assert listed["newest"] is None and listed["snapshots"][0]["state"] == "partial"
