"""issue 16 #4 (an emptied source is not a successful backup) and #5 (the config job needs the
Talos secrets bundle), with real restic, rsync and sshd."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from domum_tasks.backup.jobs import Job
from domum_tasks.backup.snapshot import guards
from domum_tasks.inventory.model import BackupJob
from tests.backup_lab import Lab, restic, snapshots
from tests.test_backup_complete import ONLY_LAST_1


def _job(**spec: object) -> Job:
    return Job("pis", BackupJob.model_validate({"kind": "files", "targets": ["a"], **spec}))


def test_guard_rules() -> None:
    job = _job()
    assert guards.problems(job, 20, set(), None) == []
    assert guards.problems(job, 10, set(), 20) == []  # exactly 50 % fewer: allowed
    [shrink] = guards.problems(job, 9, set(), 20)
    assert "max_shrink_percent" in shrink and "(20)" in shrink and "got 9" in shrink
    both = guards.problems(job, 0, set(), 20)
    assert [p.split(":")[0] for p in both] == ["min_files", "max_shrink_percent"]
    assert "mount point empty" in both[0]
    assert guards.problems(_job(min_files=0, max_shrink_percent=100), 0, set(), 20) == []
    conf = Job("conf", BackupJob(kind="config", targets=["a"]))
    [missing] = guards.problems(conf, 3, {"secrets.sops.yaml", "domum.yaml", "known_hosts"}, 3)
    assert "talos-secrets.sops.yaml" in missing and "cluster/core/01-talos" in missing


@pytest.mark.integration
def test_an_emptied_source_fails_the_guard_and_keeps_the_good_snapshot(
    lab: Lab, tmp_path: Path
) -> None:
    """#4: a good run, then the source directory emptied (an unmounted disk): the job fails
    naming the guard, no snapshot is made, retention (in the run and `backup.prune`) keeps the
    good one, which still restores."""
    lab.job(
        "pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"], retention=ONLY_LAST_1
    )
    assert lab.inv("backup.snapshot").returncode == 0
    [good] = snapshots(lab.repo("a"), "pis")

    for entry in lab.src.iterdir():
        shutil.rmtree(entry)
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "min_files: expected at least 1 file(s), got 0" in run.stderr
    assert "max_shrink_percent" in run.stderr and "(20), got 0" in run.stderr
    st = lab.state()["jobs"]["pis"]
    assert st["last_run"]["status"] == "failed" and st["last_run"]["phase"] == "guard"
    assert st["last_success_files"] == 20  # the baseline is not lowered by a failed run
    assert [s["id"] for s in snapshots(lab.repo("a"), "pis")] == [good["id"]]

    assert lab.inv("backup.prune", "--yes").returncode == 0
    assert [s["id"] for s in snapshots(lab.repo("a"), "pis")] == [good["id"]]
    out = tmp_path / "restored"
    res = lab.inv("backup.restore", "--job", "pis", "--to", str(out))
    assert res.returncode == 0, res.stderr
    assert len(list(out.rglob("f*.txt"))) == 20

    # the disk is back: the guard passes again, without any reset
    from tests.backup_lab import make_tree

    make_tree(lab.src)
    assert lab.inv("backup.snapshot").returncode == 0


@pytest.mark.integration
def test_config_job_fails_without_the_talos_secrets_bundle(lab: Lab) -> None:
    """#5: no cluster/core/01-talos/secrets.sops.yaml: the job fails naming it, no snapshot."""
    bundle = Path(os.environ["DOMUM_REPO_ROOT"]) / "cluster/core/01-talos/secrets.sops.yaml"
    bundle.unlink()
    lab.job("conf", kind="config", targets=["a"])
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1
    assert "required file talos-secrets.sops.yaml missing" in run.stderr, run.stderr
    assert snapshots(lab.repo("a"), "conf") == []
    assert lab.state()["jobs"]["conf"]["last_run"]["status"] == "failed"

    bundle.write_text("cluster: ENC[AES256_GCM,data:q,type:str]\nsops:\n    mac: ENC[z]\n")
    assert lab.inv("backup.snapshot").returncode == 0
    [snap] = snapshots(lab.repo("a"), "conf")
    assert "complete" in snap["tags"]
    listing = restic(lab.repo("a"), "ls", "--json", snap["id"]).stdout.splitlines()
    names = {json.loads(line).get("name") for line in listing[1:]}
    assert "talos-secrets.sops.yaml" in names
