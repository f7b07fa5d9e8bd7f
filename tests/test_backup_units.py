"""Pure parts of the backup namespace: retention flags, due times, restic exit codes and JSON,
manifest, lock, metrics, restore choice, timer units, and inventory checks."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context

from domum_tasks.backup import jobs
from domum_tasks.backup.bookkeeping import lock, metrics
from domum_tasks.backup.jobs import Job
from domum_tasks.backup.producers import stage
from domum_tasks.backup.repository import restic
from domum_tasks.errors import ConfigError, LockHeld, Refused, VerifyError
from domum_tasks.inventory.loader import load
from domum_tasks.inventory.model import BackupJob
from tests.conftest import LOOPBACK_INVENTORY, SHARED


def inv_with(tmp_path: Path, backup: dict[str, Any]) -> Any:
    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["backup"].update(backup)
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load(path)


def test_retention_flags_and_empty_policy(tmp_path: Path) -> None:
    inv = load(LOOPBACK_INVENTORY)
    job = jobs.select(inv, "edge-pis")[0]
    assert jobs.retention_flags(inv, job) == [
        "--keep-daily",
        "7",
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "6",
    ]
    spec = BackupJob(
        kind="files",
        targets=["nas"],
        hosts=[93],
        paths=["/etc"],
        retention={"keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_within": "14d"},
    )  # type: ignore[arg-type]
    assert jobs.retention_flags(inv, Job("x", spec)) == ["--keep-within", "14d"]
    empty = BackupJob(
        kind="files",
        targets=["nas"],
        retention={"keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0},
    )  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"backup.jobs.x.retention: empty retention policy"):
        jobs.retention_flags(inv, Job("x", empty))


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).astimezone().timestamp()


@pytest.mark.parametrize(
    ("schedule", "last", "now", "due"),
    [
        ("15 3 * * *", None, "2026-11-20T01:00", True),  # never ran
        ("15 3 * * *", "2026-11-20T03:15", "2026-11-20T23:00", False),  # ran today
        ("15 3 * * *", "2026-11-20T03:15", "2026-11-21T03:15", True),  # next fire time
        ("15 3 * * *", "2026-11-17T03:15", "2026-11-20T12:00", True),  # machine was off: catch up
        ("30 2 * * 0", "2026-11-22T02:30", "2026-11-28T23:59", False),  # weekly, not yet
        ("0 * * * *", "2026-11-20T03:00", "2026-11-20T04:00", True),  # a run that took 1h+
    ],
)
def test_is_due(schedule: str, last: str | None, now: str, due: bool) -> None:
    assert jobs.is_due(schedule, _ts(last) if last else None, _ts(now)) is due


def test_period() -> None:
    now = _ts("2026-11-20T12:00")
    assert jobs.period_s("15 3 * * *", now) == 86400
    assert jobs.period_s("30 2 * * 0", now) == 7 * 86400


@pytest.mark.parametrize(
    ("code", "stderr", "outcome"),
    [
        (0, "", "ok"),
        (3, "Warning: at least one source file could not be read", "incomplete"),
        (
            1,
            "Fatal: unable to open config file: ...\nIs there a repository at the following location?",
            "no-repo",
        ),
        (10, "", "no-repo"),
        (12, "", "bad-password"),
        (1, "Fatal: wrong password or no key found", "bad-password"),
        (11, "", "locked"),
        (1, "Fatal: something else", "failed"),
        (42, "", "failed"),  # unknown codes are failures (restic's own rule)
    ],
)
def test_restic_exit_codes(code: int, stderr: str, outcome: str) -> None:
    assert restic.classify(code, stderr) == outcome


FORGET_014 = json.dumps(
    [
        {
            "tags": None,
            "host": "h",
            "paths": ["/s"],
            "keep": [
                {
                    "time": "2026-12-01T20:23:31.62Z",
                    "tree": "t2",
                    "id": "eb246c10ff",
                    "short_id": "eb246c10",
                }
            ],
            "remove": [
                {
                    "time": "2026-11-20T03:00:00Z",
                    "tree": "t1",
                    "id": "10abbad2ff",
                    "short_id": "10abbad2",
                }
            ],
            "reasons": [
                {
                    "snapshot": {"time": "2026-12-01T20:23:31.62Z", "tree": "t2"},
                    "matches": ["daily snapshot"],
                    "counters": {},
                }
            ],
        }
    ]
)


def test_forget_rows_from_restic_json() -> None:
    rows = restic.forget_rows(FORGET_014, "j", "a")
    assert [(r["snapshot"], r["action"], r["reasons"]) for r in rows] == [
        ("eb246c10", "keep", ["daily snapshot"]),
        ("10abbad2", "remove", []),
    ]


def test_bad_packs_named() -> None:
    text = "Pack ID does not match, want 4051a49b2acd14b7, got de192dde\nFatal: repository contains errors"
    assert restic.bad_packs(text) == ["4051a49b2acd14b7"]


def test_newest_is_never_removed() -> None:
    from domum_tasks.backup.repository import prune

    job = Job("j", BackupJob(kind="config", targets=["a"]))
    snaps = [
        {"id": "a" * 64, "short_id": "aaaaaaaa", "time": "2026-01-01T00:00:00Z", "tags": ["complete"]},
        {"id": "b" * 64, "short_id": "bbbbbbbb", "time": "2026-01-02T00:00:00Z", "tags": ["complete"]},
        {"id": "c" * 64, "short_id": "cccccccc", "time": "2026-01-03T00:00:00Z", "tags": ["partial"]},
    ]  # fmt: skip
    # whatever restic answers: the newest COMPLETE one (b) may not go, a newer partial or not
    rows = [{"id": "b" * 64, "action": "remove"}, {"id": "a" * 64, "action": "keep"}]
    with pytest.raises(Refused, match="newest complete snapshot bbbbbbbb"):
        prune.never_the_newest(rows, snaps, job, "a")
    prune.never_the_newest([{"id": "a" * 64, "action": "remove"}], snaps, job, "a")


def test_partial_snapshots_do_not_count_and_the_newest_is_kept_for_inspection() -> None:
    from domum_tasks.backup.repository import prune

    def snap(i: int, *tags: str) -> dict[str, Any]:
        return {
            "id": f"{i}" * 64,
            "short_id": f"{i}" * 8,
            "time": f"2026-01-0{i}T00:00:00Z",
            "tags": list(tags),
        }

    snaps = [
        snap(1, "complete"),
        snap(2, "partial"),
        snap(3),
        snap(4, "partial"),
        snap(5, "partial"),
    ]
    rows = {r["snapshot"][0]: r["action"] for r in prune.partial_rows(snaps, "j", "a")}
    assert rows == {"2": "remove", "4": "remove", "5": "keep", "3": "keep"}  # 3: unmarked
    later = [*snaps, snap(6, "complete")]
    rows = {r["snapshot"][0]: r["action"] for r in prune.partial_rows(later, "j", "a")}
    assert rows["5"] == "remove" and "1" not in rows and "6" not in rows


def test_manifest_roundtrip_and_tampering(tmp_path: Path) -> None:
    part = tmp_path / "p"
    (part / "sub").mkdir(parents=True)
    (part / "a.txt").write_text("a")
    (part / "sub" / "odd\nname").write_text("b")
    (part / "link").symlink_to("a.txt")
    cache = tmp_path / "cache.json"
    assert stage.write_manifest(part, cache) == (2, 2, ["a.txt", "sub/odd\nname"])
    assert stage.write_manifest(part, cache) == (2, 2, [])  # unchanged: hashes reused
    assert stage.verify_tree(part) == (2, 2)
    assert set(stage.read_manifest(part)) == {"a.txt", "sub/odd\nname"}
    (part / "a.txt").write_text("x")
    with pytest.raises(VerifyError, match=r"changed a\.txt"):
        stage.verify_tree(part)
    (part / "a.txt").unlink()
    with pytest.raises(VerifyError, match=r"missing a\.txt"):
        stage.verify_tree(part)
    (part / "a.txt").write_text("a")
    (part / "extra").write_text("e")
    with pytest.raises(VerifyError, match="not in manifest extra"):
        stage.verify_tree(part)
    assert stage.verify_tree(part, allow_extra=True) == (2, 2)


def test_staging_is_renamed_only_when_complete(tmp_path: Path) -> None:
    part = stage.begin(tmp_path, "j", mirror=True)
    (part / "f").write_text("1")
    _, _, changed = stage.write_manifest(part)
    final = stage.finish(tmp_path, "j", {"job": "j"}, changed)
    assert final == tmp_path / "staging" / "j" and not part.exists()
    assert json.loads((final / "summary.json").read_text()) == {"job": "j"}
    again = stage.begin(tmp_path, "j", mirror=True)  # a mirror continues from the last copy
    assert (again / "f").read_text() == "1" and not (again / stage.MANIFEST).exists()
    assert not final.exists()
    fresh = stage.begin(tmp_path, "j", mirror=False)  # a leftover partial is rebuilt
    assert list(fresh.iterdir()) == []


def test_lock_is_single_flight(tmp_path: Path) -> None:
    with lock.held(tmp_path):
        with (
            pytest.raises(
                LockHeld, match=r"another backup run holds .*backup.lock \(pid \d+\)"
            ) as exc,
            lock.held(tmp_path),
        ):
            pass
        assert exc.value.exit_code == 5
    with lock.held(tmp_path):  # released: free again
        pass


def test_metrics_render_and_atomic_write(tmp_path: Path) -> None:
    inv = load(LOOPBACK_INVENTORY)
    data = {
        "jobs": {
            "etcd": {
                "last_success": 100.0,
                "last_run": {"status": "failed", "finished": 200.0, "duration_s": 1.5, "bytes": 7},
                "snapshots": {"nas": 4},
            }
        },
        "verify": {"nas": {"last_success": 50.0, "covered": [1], "of": 4}},
        "drill": {"etcd": {"last_success": 60.0}},
        "sizes": {},
    }
    text = metrics.render(inv, data, now=_ts("2026-11-20T12:00"))
    for line in (
        'domum_backup_last_success_timestamp_seconds{job="etcd"} 100',
        'domum_backup_last_run_timestamp_seconds{job="etcd"} 200',
        'domum_backup_last_run_success{job="etcd"} 0',
        'domum_backup_duration_seconds{job="etcd"} 1.5',
        'domum_backup_bytes{job="etcd"} 7',
        'domum_backup_snapshots{job="etcd",target="nas"} 4',
        'domum_backup_last_success_timestamp_seconds{job="edge-pis"} 0',  # never: still a series
        'domum_backup_schedule_period_seconds{job="pve-vms"} 604800',
        'domum_backup_last_verify_success_timestamp_seconds{target="nas"} 50',
        # issue 16 #12: every expected target and job has a series from the first run, 0 =
        # never; so the oldest of them (unlabelled) is 0 while gcs was never checked
        'domum_backup_last_verify_success_timestamp_seconds{target="gcs"} 0',
        "domum_backup_last_verify_success_timestamp_seconds 0",
        'domum_backup_verify_coverage_ratio{target="nas"} 0.25',
        'domum_backup_last_drill_success_timestamp_seconds{job="etcd"} 60',
        'domum_backup_last_drill_success_timestamp_seconds{job="config"} 0',
        "domum_backup_last_drill_success_timestamp_seconds 0",
        "domum_backup_running 0",
    ):
        assert line in text.splitlines(), line
    path = metrics.write(inv, data, tmp_path)
    assert path.read_text() == metrics.render(inv, data) and [
        p.name for p in tmp_path.iterdir()
    ] == ["domum_backup.prom"]


def test_restore_choice() -> None:
    from domum_tasks.backup.recovery.restore import choose

    snaps = [
        {
            "id": "aaaa1111",
            "short_id": "aaaa1111",
            "time": "2026-11-01T03:00:00Z",
            "tags": ["domum", "complete"],
        },
        {
            "id": "bbbb2222",
            "short_id": "bbbb2222",
            "time": "2026-11-02T03:00:00Z",
            "tags": ["domum", "complete"],
        },
        {  # unmarked (made before completeness was marked): counted only by explicit id
            "id": "dddd4444",
            "short_id": "dddd4444",
            "time": "2026-11-02T04:00:00Z",
            "tags": ["domum"],
        },
        {
            "id": "cccc3333",
            "short_id": "cccc3333",
            "time": "2026-11-03T03:00:00Z",
            "tags": ["domum", "partial"],
        },
    ]
    assert choose(snaps, "", "j", "a")["id"] == "bbbb2222"  # newest complete, not the partial
    assert choose(snaps, "cccc", "j", "a")["id"] == "cccc3333"  # by explicit id only
    assert choose(snaps, "dddd", "j", "a")["id"] == "dddd4444"
    assert choose(snaps, "2026-11-01T12:00:00+00:00", "j", "a")["id"] == "aaaa1111"
    with pytest.raises(ConfigError, match="not a snapshot id or a time"):
        choose(snaps, "yesterday", "j", "a")


@pytest.mark.skipif(not (SHARED / "contracts").exists(), reason="needs ../shared/contracts")
def test_recovery_steps_are_valid_talosctl() -> None:
    import shlex

    from domum_tasks.backup.recovery.restore import recovery_steps
    from tests.fixtures.contract import assert_argv_valid

    lines = recovery_steps(load(LOOPBACK_INVENTORY), Path("/restore"))
    argvs = [shlex.split(line.strip()) for line in lines if line.strip().startswith("talosctl")]
    assert len(argvs) == 4 and any("--recover-from=/restore/etcd.snapshot" in a for a in argvs)
    assert_argv_valid(argvs)


def flat(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step of a JSON plan, a job's and a fan-out's own steps in order."""
    out: list[dict[str, Any]] = []
    for s in steps:
        out.append(s)
        out += flat(s.get("steps", []))
        out += flat([x for lane in s.get("lanes", []) for x in lane])
    return out


def test_snapshot_dry_run_json_shows_strict_ssh(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from domum_tasks.backup.tasks import snapshot

    monkeypatch.setenv("DOMUM_BACKUP_TARGETS_NAS_PASSWORD", "sekrit-pw")
    snapshot(Context(), job="edge-pis", dry_run=True, json=True)
    out = capsys.readouterr().out
    steps = flat(json.loads(out))
    assert "sekrit-pw" not in out
    [job] = [s for s in steps if s["kind"] == "job"]  # one process group, with a deadline
    assert job["name"] == "edge-pis" and job["deadline_s"] == 7200
    rsyncs = [s for s in steps if s["kind"] == "cmd" and s["argv"][0] == "rsync"]
    assert len(rsyncs) == 3 and all("--delete" in s["argv"] for s in rsyncs)
    assert all("--rsync-path=sudo -n rsync" in s["argv"] for s in rsyncs)  # sudo: true
    ssh = rsyncs[0]["argv"][rsyncs[0]["argv"].index("-e") + 1]
    assert (
        "StrictHostKeyChecking=yes" in ssh
        and "UserKnownHostsFile=" in ssh
        and "BatchMode=yes" in ssh
    )
    restic_steps = [s for s in steps if s["kind"] == "cmd" and s["argv"][0] == "restic"]
    restics = [s["argv"] for s in restic_steps]
    # issue 16 #1: never `restic unlock`; another client's lock is waited for (--retry-lock)
    argvs = [s.get("argv") or s.get("args", {}).get("argv") or [] for s in steps]
    assert not [a for a in argvs if "unlock" in a]
    # issue 16 #10: a backup never runs forget or prune (backup.prune does, on its own timer)
    assert not [s for s in steps if s.get("action") == "backup.retention"]
    assert not [a for a in argvs if "forget" in a or "prune" in a]
    assert [a[5:8] for a in restics] == [["--retry-lock", "300s", "backup"]]
    assert restics[0][3:5] == ["-o", restics[0][4]] and "sftp.command=ssh" in restics[0][4]
    assert "job=edge-pis" in restics[0]
    # issue 16 #2/#3: saved `partial` by the backup call itself
    assert restics[0][restics[0].index("partial") - 1] == "--tag"
    [confirm] = [s for s in steps if s.get("action") == "backup.confirm"]
    assert confirm["args"]["backup"] == {"result_of": 0}
    tag = confirm["args"]["argv"]
    assert tag[5:] == [
        "--retry-lock", "60s", "tag", "--json", "--add", "complete", "--remove", "partial",
        "<snapshot id of the backup step>",
    ]  # fmt: skip
    kinds = [s.get("action") or s["kind"] for s in json.loads(out)]
    assert kinds == [
        "backup.lock", "backup.start", "job", "backup.record", "backup.metrics", "backup.unlock",
    ]  # fmt: skip
    assert json.loads(out)[3]["args"]["outcome"] == {"result_of": 2}


def test_install_timer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from domum_tasks.backup.tasks import install_timer

    install_timer(Context(), dry_run=True, unit_dir=str(tmp_path))
    shown = capsys.readouterr().out
    assert (
        "OnCalendar=*:0/15" in shown
        and "backup.snapshot --due" in shown
        and not list(tmp_path.iterdir())
    )
    install_timer(Context(), unit_dir=str(tmp_path))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"domum-backup{s}.{t}"
        for s in ("", "-verify", "-drill", "-prune", "-reclaim")
        for t in ("service", "timer")
    )
    # issue 16 #10/#11: retention daily, restic prune --max-unused weekly, on their own timers
    prune = (tmp_path / "domum-backup-prune.service").read_text()
    assert prune.splitlines().count(next(x for x in prune.splitlines() if "ExecStart" in x)) == 1
    assert prune.split("ExecStart=", 1)[1].split("\n")[0].endswith(" backup.prune --yes")
    assert "OnCalendar=*-*-* 04:30:00" in (tmp_path / "domum-backup-prune.timer").read_text()
    reclaim = (tmp_path / "domum-backup-reclaim.service").read_text()
    assert reclaim.split("ExecStart=", 1)[1].split("\n")[0].endswith(" --yes --reclaim")
    assert "OnCalendar=Sat " in (tmp_path / "domum-backup-reclaim.timer").read_text()
    assert "Persistent=true" in (tmp_path / "domum-backup.timer").read_text()
    install_timer(Context(), cron=True)
    cron = capsys.readouterr().out
    assert "*/15 * * * *" in cron and "backup.verify" in cron and "backup.drill" in cron
    assert " backup.prune --yes\n" in cron and " backup.prune --yes --reclaim\n" in cron


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "jobs": {
                    "x": {"kind": "files", "targets": ["pve-nas"], "hosts": [93], "paths": ["/etc"]}
                }
            },
            "a files job needs a restic target",
        ),
        (
            {"jobs": {"x": {"kind": "config", "targets": ["nas"], "schedule": "every day"}}},
            "not a cron schedule",
        ),
        (
            {"jobs": {"x": {"kind": "nas", "targets": ["nas"], "shares": ["photos"]}}},
            "'photos' is not under nas.shares",
        ),
        (
            {
                "jobs": {
                    "x": {"kind": "files", "targets": ["nas"], "hosts": [90], "paths": ["/etc"]}
                }
            },
            "raspios hosts only",
        ),
        ({"jobs": {"x": {"kind": "config", "targets": ["nas"], "timeout": "soon"}}}, "timeout"),
        # issue 16 #7: a comma splits restic's `--tag job=a,b` into two tags
        (
            {"jobs": {"a,b": {"kind": "config", "targets": ["nas"]}}},
            r"inv\.yaml:\d+: backup\.jobs\.a,b\.\[key\]: 'a,b' is not a job name: "
            r"\^\[a-z0-9\]\[a-z0-9_-\]\*\$",
        ),
        ({"jobs": {"Pis": {"kind": "config", "targets": ["nas"]}}}, "'Pis' is not a job name"),
        ({"jobs": {"-x": {"kind": "config", "targets": ["nas"]}}}, "'-x' is not a job name"),
        # issue 16 #10: restic refuses `--keep-within 14days` (exit 1): caught by `inv check`
        (
            {"retention": {"keep_within": "14days"}},
            r"inv\.yaml:\d+: backup\.retention\.keep_within: '14days' is not a restic duration"
            r".*e\.g\. 14d, 2y5m7d3h",
        ),
        (
            {
                "jobs": {
                    "x": {
                        "kind": "config",
                        "targets": ["nas"],
                        "retention": {"keep_within": "1.5d"},
                    }
                }
            },
            r"backup\.jobs\.x\.retention\.keep_within: '1\.5d' is not a restic duration",
        ),
        ({"retention": {"keep_within": "14"}}, "'14' is not a restic duration"),
        ({"retention": {"keep_within": "0d"}}, "'0d' is not a restic duration"),
        ({"retention": {"keep_daily": -1}}, r"backup\.retention\.keep_daily"),
        ({"retention": {"keep_last": "many"}}, r"backup\.retention\.keep_last"),
    ],
)
def test_inventory_job_checks(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        inv_with(tmp_path, change)


@pytest.mark.parametrize("within", ["14d", "2y5m7d3h", "3h2d", "1y"])
def test_restic_durations_restic_accepts_are_valid(tmp_path: Path, within: str) -> None:
    inv = inv_with(tmp_path, {"retention": {"keep_within": within}, "lock_wait": "90s"})
    assert inv.backup.retention.keep_within == within and inv.backup.lock_wait == 90
    inv = inv_with(tmp_path, {"jobs": {"n0_a-b": {"kind": "config", "targets": ["nas"]}}})
    assert "n0_a-b" in inv.backup.jobs


def test_timeout_durations(tmp_path: Path) -> None:
    inv = inv_with(
        tmp_path, {"jobs": {"x": {"kind": "config", "targets": ["nas"], "timeout": "90m"}}}
    )
    assert inv.backup.jobs["x"].timeout == 5400 and inv.backup.jobs["x"].enabled
    assert os.environ["DOMUM_INVENTORY"]  # isolated env still in place


RULE = (
    Path(__file__).resolve().parent.parent / "cluster/apps/infra/monitoring/rules/domum-backup.yaml"
)


@pytest.mark.skipif(
    not (SHARED / "contracts").exists(), reason="needs ../shared/contracts (CRD schemas)"
)
def test_alert_rule_is_a_valid_prometheusrule_on_our_metrics() -> None:
    import re

    import jsonschema

    doc = yaml.safe_load(RULE.read_text())
    schema = json.loads(
        (SHARED / "contracts/crd-schemas/monitoring.coreos.com/prometheusrule_v1.json").read_text()
    )
    jsonschema.validators.validator_for(schema)(schema).validate(doc)  # Go regexes: no check_schema
    assert doc["metadata"]["name"] == "domum-backup"
    names = set(metrics.HELP) | {"node_textfile_mtime_seconds"}
    for rule in doc["spec"]["groups"][0]["rules"]:
        used = set(re.findall(r"\b((?:domum_backup|node_textfile)_[a-z_]+)", rule["expr"]))
        assert used and used <= names, (rule["alert"], used - names)


@pytest.mark.parametrize(
    ("version_line", "refused"),
    [
        ("restic 0.14.0 compiled with go1.19.8 on linux/amd64", True),  # bookworm's
        ("restic 0.15.2 compiled with go1.20.3 on linux/amd64", True),
        ("something else", True),
        ("restic 0.16.0 compiled with go1.21.1 on linux/amd64", False),
        ("restic 0.18.0 compiled with go1.24.4 on linux/amd64", False),
    ],
)
def test_restic_older_than_0_16_is_refused_with_exit_3(
    monkeypatch: pytest.MonkeyPatch, version_line: str, refused: bool
) -> None:
    """issue 16: restic < 0.16 counts a live lock older than 30 min as stale, has no
    --retry-lock: every backup task refuses it (exit 3) with the way to the pinned one."""
    from invoke import Exit

    from domum_tasks import tools
    from domum_tasks.backup.repository import version
    from domum_tasks.backup.tasks import list_, snapshot

    fake = tools.bin_dir() / "restic"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    fake.chmod(0o755)
    version._check_version.cache_clear()
    monkeypatch.setenv("DOMUM_BACKUP_TARGETS_NAS_PASSWORD", "pw")
    try:
        if refused:
            for call in (
                lambda: snapshot(Context(), job="edge-pis", dry_run=True),
                lambda: list_(Context(), job="edge-pis"),
            ):
                with pytest.raises(Exit) as err:
                    call()
                assert err.value.code == 3
                assert "Domum needs restic >= 0.16" in str(err.value.message)
                assert "inv tools.install --tool restic" in str(err.value.message)
        else:
            version.require_restic()
    finally:
        version._check_version.cache_clear()


def test_restic_version_is_kept_per_binary(tmp_path: Path) -> None:
    """A backup run reads the version of the binary it probed before instead of starting it
    again; a binary replaced in place (new inode, size, times) is probed again, and an old one
    is still refused (exit 3)."""
    from domum_tasks.backup.repository import version
    from domum_tasks.errors import ToolMissing

    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "restic"
    fake.parent.mkdir()

    def install(line: str) -> None:
        new = fake.with_name("restic.new")
        new.write_text(f"#!/bin/sh\necho x >> {calls}\necho '{line}'\n")
        new.chmod(0o755)
        new.replace(fake)  # as an upgrade does: a new file renamed over the old one

    cache = tmp_path / "state" / "cache"
    cache.mkdir(parents=True)
    install("restic 0.18.0 compiled with go1.24.4 on linux/amd64")
    for _ in range(3):
        version._check_version.cache_clear()  # a new process each time
        version._check_version(fake, cache)
    assert calls.read_text().count("x") == 1  # probed once, then read back
    install("restic 0.14.0 compiled with go1.19.8 on linux/amd64")
    version._check_version.cache_clear()
    with pytest.raises(ToolMissing) as err:
        version._check_version(fake, cache)
    assert "restic 0.14.0" in err.value.message
    assert "Domum needs restic >= 0.16" in err.value.message
    assert calls.read_text().count("x") == 2
    install("restic 0.18.0 compiled with go1.24.4 on linux/amd64")
    for _ in range(2):
        version._check_version.cache_clear()
        version._check_version(fake, None)  # no cache dir: always probed
    assert calls.read_text().count("x") == 4
    version._check_version.cache_clear()
