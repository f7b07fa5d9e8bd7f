"""issue 16 #12: the DomumBackup* alert expressions judged by Prometheus itself (`promtool test
rules`, Debian's `prometheus` package) on series shaped like the ones metrics.py writes: the
timer alert stays quiet during a long run and fires past the run's deadline (a run killed -9
leaves `running 1`), verify and drill staleness fire 8 days after Domum began to expect them even
when they never passed, and a job that lost more files than its guard allows is alerted.

The annotations are dropped from the copy under test: promtool compares them too, and they are
text for people; the expressions and labels are what this checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

RULE = (
    Path(__file__).resolve().parent.parent / "cluster/apps/infra/monitoring/rules/domum-backup.yaml"
)
# the pinned promtool scripts/setup.sh puts in .bin/ (scripts/pinned-tools.sh), else PATH's
PINNED = Path(__file__).resolve().parent.parent / ".bin" / "promtool"
PROMTOOL = str(PINNED) if os.access(PINNED, os.X_OK) else shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed: run scripts/setup.sh (it pins one in .bin/)"
)
# what the node-exporter scrape adds to every series; the metrics' own `job` label becomes
# `exported_job` (no honor_labels), as the rule file's header says
A = 'instance="admin",job="node"'


def _alert(name: str, **labels: str) -> dict[str, Any]:
    severity = {"DomumBackupTimerStopped": "critical", "DomumBackupShrank": "critical"}
    return {
        "exp_labels": {
            "severity": severity.get(name, "warning"),
            "instance": "admin",
            "job": "node",
            **labels,
        }
    }


def _case(series: dict[str, str], checks: list[tuple[str, str, list[dict[str, Any]]]]) -> Any:
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {"eval_time": t, "alertname": name, "exp_alerts": alerts} for t, name, alerts in checks
        ],
    }


TIMER = "DomumBackupTimerStopped"
MTIME = f'node_textfile_mtime_seconds{{file="/tc/domum_backup.prom",{A}}}'
TIMER_ALERT = _alert(TIMER, file="/tc/domum_backup.prom")
CASES = [
    # a run that started at 0 and writes nothing for 12 h (one long job): quiet until its
    # deadline (10 h), then the stale file counts again (the run was killed -9: running stays 1)
    _case(
        {
            MTIME: "0+0x900",
            f"domum_backup_running{{{A}}}": "1+0x900",
            f"domum_backup_run_deadline_timestamp_seconds{{{A}}}": "36000+0x900",
        },
        [("2h", TIMER, []), ("9h", TIMER, []), ("11h", TIMER, [TIMER_ALERT])],
    ),
    # no run in progress and the file not rewritten for 2 h: the timer stopped
    _case(
        {
            MTIME: "0+0x200",
            f"domum_backup_running{{{A}}}": "0+0x200",
            f"domum_backup_run_deadline_timestamp_seconds{{{A}}}": "36000+0x200",
        },
        [("50m", TIMER, []), ("2h", TIMER, [TIMER_ALERT])],
    ),
    # never verified (0), expected since t=0: quiet for 8 days, then it fires
    _case(
        {
            f'domum_backup_last_verify_success_timestamp_seconds{{target="nas",{A}}}': "0+0x13500",
            f'domum_backup_verify_tracked_since_timestamp_seconds{{target="nas",{A}}}': "0+0x13500",
            # a target added on day 5 and never checked: not yet stale on day 9
            f'domum_backup_last_verify_success_timestamp_seconds{{target="gcs",{A}}}': "0+0x13500",
            f'domum_backup_verify_tracked_since_timestamp_seconds{{target="gcs",{A}}}': "432000+0x13500",
        },
        [
            ("7d", "DomumBackupVerifyStale", []),
            ("9d", "DomumBackupVerifyStale", [_alert("DomumBackupVerifyStale", target="nas")]),
        ],
    ),
    _case(
        {
            f'domum_backup_last_drill_success_timestamp_seconds{{exported_job="etcd",{A}}}': "0+0x13500",
            f'domum_backup_drill_tracked_since_timestamp_seconds{{exported_job="etcd",{A}}}': "0+0x13500",
        },
        [
            ("7d", "DomumBackupDrillStale", []),
            ("9d", "DomumBackupDrillStale", [_alert("DomumBackupDrillStale", exported_job="etcd")]),
        ],
    ),
    # files: 100 at the last success; a run with 40 (-60 % > 50 %) alerts, one with 60 does not,
    # nor does a job whose guard is off (100 %)
    _case(
        {
            f'domum_backup_files{{exported_job="gone",{A}}}': "40+0x30",
            f'domum_backup_last_success_files{{exported_job="gone",{A}}}': "100+0x30",
            f'domum_backup_files_max_shrink_percent{{exported_job="gone",{A}}}': "50+0x30",
            f'domum_backup_files{{exported_job="fine",{A}}}': "60+0x30",
            f'domum_backup_last_success_files{{exported_job="fine",{A}}}': "100+0x30",
            f'domum_backup_files_max_shrink_percent{{exported_job="fine",{A}}}': "50+0x30",
            f'domum_backup_files{{exported_job="off",{A}}}': "0+0x30",
            f'domum_backup_last_success_files{{exported_job="off",{A}}}': "100+0x30",
            f'domum_backup_files_max_shrink_percent{{exported_job="off",{A}}}': "100+0x30",
        },
        [("10m", "DomumBackupShrank", [_alert("DomumBackupShrank", exported_job="gone")])],
    ),
]


def test_alert_rules_with_promtool(tmp_path: Path) -> None:
    doc = yaml.safe_load(RULE.read_text())
    groups = doc["spec"]["groups"]
    for rule in groups[0]["rules"]:
        rule.pop("annotations", None)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    check = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = tmp_path / "tests.yaml"
    tests.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "5m", "tests": CASES})
    )
    run = subprocess.run(
        [PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
