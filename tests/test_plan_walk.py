"""Every planner, walked over the embedded inventory (config/domum.yaml, the real homelab):
each task that changes something prints its plan with `--dry-run --json`, and the executor's
dry-run finds a handler for every step kind and every Local action in it (run.check_runnable).

No packet leaves this machine: the walk runs in a network namespace of its own (`unshare -n`,
only a loopback device), because probes start real programs (restic, rclone, ssh) that the
in-process network guard cannot stop. Every homelab host is unreachable there, so the planners
plan as for fresh targets, which is what a user sees before the hardware exists. talosctl and
flux are the strict stand-ins.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.fixtures.parity import json_arrays
from tests.pi_flash_support import talos_like_raw

KINDS = {"cmd", "ssh", "pve", "write", "wait", "local", "fanout", "job"}


def _cases(tmp: Path) -> dict[str, dict[str, Any]]:
    image = tmp / "talos.raw"
    image.write_bytes(talos_like_raw())
    device = tmp / "sdcard.bin"
    device.write_bytes(b"\0" * (8 << 20))
    return {
        "talos.genconfig": {},
        "talos.schematic": {"offline": True},
        "talos.apply": {"all": True, "insecure": True},
        "talos.bootstrap": {},
        "talos.kubeconfig": {"out": str(tmp / "kubeconfig")},
        "talos.health": {},
        # online: the plan registers the schematics first (a dry-run sends nothing); with
        # --offline the embedded homelab refuses, having no config/schematics.lock
        # (tests/test_talos_schematic_use.py)
        "talos.upgrade": {},
        "talos.upgrade-k8s": {},
        "talos.etcd-snapshot": {"out": str(tmp / "etcd.snapshot")},
        "talos.reboot": {"node": "92"},
        "talos.shutdown": {"node": "92"},
        "talos.reset": {"node": "92"},
        "talos.discover": {"at": "10.0.10.92", "write": True},
        "flux.bootstrap": {},
        "flux.check": {"pre": True},
        "flux.diff": {},
        "flux.reconcile": {"with_source": True},
        "flux.suspend": {"all": True},
        "flux.resume": {"all": True},
        "flux.render-settings": {},
        "proxmox.vzdump": {"all": True},
        "proxmox.create-vm": {"all": True, "start": True},
        "proxmox.destroy-vm": {"node": 96},
        "proxmox.start": {"node": 96},
        "proxmox.stop": {"node": 96},
        "proxmox.shutdown": {"node": 96},
        "proxmox.reboot": {"node": 96},
        "proxmox.snapshot": {"node": 96, "name": "before-upgrade"},
        "proxmox.snapshot-rollback": {"node": 96, "name": "before-upgrade"},
        "proxmox.snapshot-delete": {"node": 96, "name": "before-upgrade"},
        "proxmox.restore": {
            "node": "unifi",
            "from_": "nas-backup:backup/vzdump-lxc-210-2026_12_01-02_30_00.tar.zst",
        },
        "pi.run": {"all_": True, "cmd": "uptime"},
        "pi.update": {"all_": True},
        "pi.reboot": {"node": "93"},
        "pi.enroll": {"node": "93"},
        "pi.flash": {"node": "92", "device": str(device), "image": str(image)},
        "backup.init": {},
        "backup.snapshot": {"all": True},
        "backup.prune": {},
        "backup.verify": {},
        "backup.restore": {"job": "config", "to": str(tmp / "restore")},
        "backup.drill": {},
        "backup.install-timer": {"unit_dir": str(tmp / "units")},
        "backup.key-rotate": {"target": "nas"},
        "tools.install": {},
        "secrets.edit": {},
        "secrets.init": {},
        "secrets.rekey": {},
        "up": {"unit_dir": str(tmp / "units")},
    }


# What a dry-run on the bare embedded inventory may honestly end with besides a plan (exit 0):
# the same refusal the real run would give before changing anything.
EXPECTED_REFUSALS: dict[str, tuple[int, str]] = {
    # the example secrets file is encrypted to the placeholder recipient of .sops.yaml
    "talos.genconfig": (2, "age1REPLACE-WITH-YOUR-AGE-PUBLIC-KEY"),
    "secrets.edit": (2, "age"),
    # the committed example Secrets are encrypted to the throwaway placeholder: the cluster could
    # not decrypt them, and .sops.yaml still names it, so there is nothing to re-key to
    "flux.bootstrap": (2, "inv secrets.rekey"),
    "secrets.rekey": (2, "placeholder recipient"),
    # nothing generated yet: apply says what to run first
    "talos.apply": (2, "run `inv talos.genconfig` first"),
    # retention is restic's own decision (`forget --dry-run`): without the repository there is
    # nothing to decide, and the real run fails the same way
    "backup.prune": (1, "restic forget --dry-run on nas failed"),
    # which snapshot to restore, and how much to verify, come from the repository too
    "backup.restore": (1, "restic snapshots on nas failed"),
    # the old key's id is read from the repository (`restic key list`)
    "backup.key-rotate": (1, "restic key list on nas failed"),
    # no node is in maintenance mode in the walk: nothing to read, nothing to propose
    "talos.discover": (1, "maintenance mode"),
    # preflight: the walk's home has no age key (secrets.init makes one); up stops before any
    # phase that writes, as its real run would
    "up": (4, "no age key found"),
}


def _all_steps(plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for step in plan:
        out.append(step)
        nested = [*step.get("steps", []), *(s for lane in step.get("lanes", []) for s in lane)]
        if isinstance(step.get("probe"), dict):
            nested.append(step["probe"])
        out += _all_steps(nested)
    return out


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DOMUM_INVENTORY", str(REPO / "config" / "domum.yaml"))
    monkeypatch.setenv("GITHUB_TOKEN", "walk-token-not-a-secret")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for target in ("NAS", "GCS"):  # what a cron job's environment would carry
        monkeypatch.setenv(f"DOMUM_BACKUP_TARGETS_{target}_PASSWORD", "walk-password")
    return tmp_path


def _mutating() -> list[str]:
    import inspect

    from domum_tasks import ns

    return [n for n in ns.task_names if "dry_run" in inspect.signature(ns[n].body).parameters]


def test_the_walk_covers_every_mutating_task(tmp_path: Path) -> None:
    assert sorted(_cases(tmp_path)) == sorted(_mutating())


def _walk(tmp: Path) -> list[dict[str, Any]]:
    """In the network namespace: every case's dry-run, in one process (the driver below)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed to walk the planners without a network")
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "tests.test_plan_walk", str(tmp)],
        capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=600,
    )  # fmt: skip
    if proc.returncode != 0 and "unshare failed" in proc.stderr:
        pytest.skip(f"no network namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.mark.integration
def test_every_planner_plans_the_embedded_homelab(embedded: Path, fake_cli: Any) -> None:
    problems = []
    for row in _walk(embedded):
        name, code, message = row["name"], row["code"], row["message"]
        if "internal" in message or "Traceback" in row["stderr"]:
            problems.append(f"{name}: {message}")
        elif name in EXPECTED_REFUSALS and code:
            want_code, want_text = EXPECTED_REFUSALS[name]
            if code != want_code or want_text not in message:
                problems.append(f"{name}: exit {code}: {message}")
        elif code != 0:
            problems.append(f"{name}: exit {code}: {message}")
        else:
            plans = json_arrays(row["stdout"])
            kinds = {step["kind"] for plan in plans for step in _all_steps(plan)}
            if not plans or not kinds <= KINDS:
                problems.append(f"{name}: plans {plans!r}")
    assert not problems, "\n".join(problems)


def _drive(tmp: Path) -> None:
    """Run inside the namespace: one JSON line per task."""
    from invoke import Context, Exit

    from domum_tasks import ns

    for name, options in sorted(_cases(tmp).items()):
        out, err = io.StringIO(), io.StringIO()
        code, message = 0, ""
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                ns[name](Context(), dry_run=True, json=True, **options)
            except Exit as exc:
                code, message = exc.code, str(exc.message or "")
        row = {"name": name, "code": code, "message": message}
        print(json.dumps({**row, "stdout": out.getvalue(), "stderr": err.getvalue()}), flush=True)


if __name__ == "__main__":  # python -m tests.test_plan_walk DIR, from the repository
    _drive(Path(sys.argv[1]))
