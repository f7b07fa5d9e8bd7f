"""A whole homelab on loopback for `domum status` (tests/test_status*.py and benchmarks/status):
the loopback inventory's shape, wired to the stand-ins every other test uses:

- Talos nodes and etcd: the strict talosctl stand-in (tests/fakes), with a talosconfig file;
- Flux: the flux stand-in's Kustomizations and HelmReleases;
- Proxmox: fakepve (pve_sim), the inventory's VM and containers on it;
- the Raspberry Pi OS Pis: real sshd hosts (sshd_hosts);
- backups: a local restic repository whose snapshots are made by restic itself, tagged as
  Domum tags a complete one, and a state file as backup.* writes it.

Plain functions, so the benchmark (no pytest) builds the same lab.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context
from invoke.exceptions import Exit

PASSWORD = "correct horse battery staple"
CONTROL_PLANES = {90: "domum-cp1", 91: "domum-cp2", 96: "domum-cp3"}
# The jobs of the embedded inventory, with the one restic target "a" (a local repository).
RESTIC_JOBS = ("etcd", "edge-pis", "config")


def talosconfig(path: Path) -> Path:
    cfg = {"context": "domum", "contexts": {"domum": {
        "endpoints": ["127.0.0.90", "127.0.0.91", "127.0.0.96"],
        "ca": "Y2E=", "crt": "Y3J0", "key": "a2V5"}}}  # fmt: skip
    path.write_text(yaml.safe_dump(cfg))
    return path


def cli_state() -> dict[str, Any]:
    """The talosctl/flux stand-in's state of a healthy, bootstrapped cluster."""
    members = [{"hostname": h, "ip": f"127.0.0.{i}", "type": "controlplane"}
               for i, h in CONTROL_PLANES.items()]  # fmt: skip
    return {"bootstrapped": True, "members": members}


def inventory_data(base: dict[str, Any], root: Path, repo: Path) -> dict[str, Any]:
    """`base` (the fleet's and fakepve's loopback inventory) with the talosconfig and the
    backup section pointed into `root`."""
    data = dict(base)
    data["cluster"] = {**data["cluster"], "talosconfig": str(talosconfig(root / "talosconfig"))}
    backup = data["backup"]
    data["backup"] = {
        **backup,
        "state_dir": str(root / "state"),
        "log_file": str(root / "log" / "backup.log"),
        "metrics_dir": str(root / "metrics"),
        "targets": {
            "a": {"type": "restic", "repository": str(repo)},
            "pve-nas": backup["targets"]["pve-nas"],
        },
        "jobs": {
            name: {**spec, "targets": ["a"] if spec["kind"] != "vzdump" else spec["targets"]}
            for name, spec in backup["jobs"].items()
        },
    }
    return data


def restic(repo: Path, *args: str) -> str:
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD": PASSWORD}
    proc = subprocess.run(["restic", *args], env=env, capture_output=True, text=True, check=True)
    return proc.stdout


def snapshot(repo: Path, job: str, src: Path, *, when: str = "", complete: bool = True) -> None:
    """A snapshot of `job` tagged as Domum's backup.snapshot leaves one (complete or partial)."""
    tags = f"domum,job={job},{'complete' if complete else 'partial'}"
    extra = ["--time", when] if when else []
    restic(repo, "backup", "--host", "domum", "--tag", tags, *extra, str(src))


def write_state(state_dir: Path, **jobs_last_success: float) -> None:
    """state.json as backup.* records finished runs (only what status reads)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    data = {"version": 1, "jobs": {j: {"last_success": t, "last_run": {"status": "ok"}}
                                   for j, t in jobs_last_success.items()},
            "verify": {}, "drill": {}, "sizes": {}}  # fmt: skip
    (state_dir / "state.json").write_text(json.dumps(data))


def fill_backups(repo: Path, src: Path, state_dir: Path) -> None:
    """A fresh complete snapshot of every restic job, and a recent vzdump success."""
    for job in RESTIC_JOBS:
        snapshot(repo, job, src)
    write_state(state_dir, **{"pve-vms": time.time() - 3600})


def copy_repo(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


@contextlib.contextmanager
def silent_listener(addr: str, port: int = 0) -> Iterator[int]:
    """A TCP port on loopback that accepts connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, port))
        sock.listen(64)
        yield int(sock.getsockname()[1])


# --- pytest side (tests/test_status*.py) ---------------------------------------------


@dataclass
class Homelab:
    path: Path
    data: dict[str, Any]
    fleet: Any
    cli: Any
    guests: Any
    repo: Path
    src: Path
    cts: dict[str, Any]

    def save(self) -> None:
        self.path.write_text(yaml.safe_dump(self.data, sort_keys=False))

    def record(self, section: str, key: str, entry: dict[str, Any]) -> None:
        """Add what backup.verify/backup.drill record to the state file (verify: per target,
        drill: per job)."""
        state = self.path.parent / "state" / "state.json"
        data = json.loads(state.read_text())
        data[section][key] = entry
        state.write_text(json.dumps(data))

    def forget(self, job: str) -> None:
        """Every snapshot of `job` gone (restic forget by id: nothing else is touched)."""
        snaps = json.loads(restic(self.repo, "snapshots", "--json", "--tag", f"job={job}"))
        restic(self.repo, "forget", *(s["id"] for s in snaps))


@pytest.fixture
def homelab(
    sshd_fleet: Any,
    fake_cli: Any,
    pve_guests: Any,
    restic_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Homelab:
    sshd_fleet.reset()
    sim = pve_guests.sim
    base = sshd_fleet.inventory_data(base=sim.inventory_path)
    repo = copy_repo(restic_template, tmp_path / "repo-a")
    lab = Homelab(tmp_path / "homelab.yaml", inventory_data(base, tmp_path, repo), sshd_fleet,
                  fake_cli, pve_guests, repo, tmp_path / "src", {})  # fmt: skip
    lab.save()
    monkeypatch.setenv("DOMUM_INVENTORY", str(lab.path))
    monkeypatch.setenv("DOMUM_BACKUP_TARGETS_A_PASSWORD", PASSWORD)
    monkeypatch.setenv("COLUMNS", "250")
    fake_cli.set_state(**cli_state())
    sim.add_inventory_vm(96, status="running")
    for ct in ("unifi", "mqtt"):
        lab.cts[ct] = pve_guests.add_inventory_ct(ct, status="running")
    from tests.backup_lab import make_tree

    make_tree(lab.src)
    fill_backups(repo, lab.src, tmp_path / "state")
    return lab


def status(capsys: pytest.CaptureFixture[str], **kw: Any) -> tuple[int, list[dict[str, Any]], str]:
    """(exit code, the JSON rows, the one stderr line) of `domum status --json`, in-process."""
    from domum_tasks.status import tasks as status_tasks

    code, message = 0, ""
    try:
        status_tasks.status(Context(), json=True, **kw)
    except Exit as exc:
        code, message = exc.code, str(exc.message)
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else []), message


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{r['part']} {r['name']}": r for r in rows}
