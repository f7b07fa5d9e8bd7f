"""The loopback homelab `domum up` runs against in tests/test_up_e2e.py: the embedded inventory's
shape (tests/data/loopback.yaml, the 127.0.0.x twin of config/domum.yaml) wired to the stand-ins.

- fakepve (tests/fixtures/pve_sim.py) for pve1; node 96's VM does not exist yet;
- the talosctl/flux stand-ins (tests/fixtures/fake_cli.py) with the node lifecycle: the Pis and
  mini PCs start in maintenance mode (booted from their image, no config); node 96 is absent
  until its VM runs, then in maintenance (`boot_vms`: a Talos ISO boots into maintenance);
  Flux not installed; the kubectl stand-in for the `sops-age` Secret;
- real sshd (tests/fixtures/sshd_hosts.py) for the Raspberry Pi OS Pis 93-95;
- local restic repositories for the `nas` and `gcs` targets (tests/backup_lab.py's template);
- the Image Factory stand-in (through pve_sim);
- a repository root of its own (DOMUM_REPO_ROOT): a GitOps overlay holding one Secret
  encrypted to the user's age key (real sops and age), clusterconfig/ written by `up` itself.

The `world` fixture builds it (and lets node 96's VM boot once PVE runs it); `finished`
asserts a run that reached the summary of a finished homelab; `cli_writes` lists what the
talosctl/flux stand-ins were asked to change.

`up` runs as a user runs it: `domum up ...` in a child process (its own
session, so a test can kill the whole tree), stdout a pipe: `python -c` running what the
`domum` console script runs, so the worktree's package is the one under test.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.backup_lab import PASSWORD, snapshots
from tests.fixtures.fake_cli import FakeCli
from tests.fixtures.pve_sim import PveSim
from tests.fixtures.sshd_hosts import SshdFleet
from tests.sops_repo import SECRET, FakeKubectl, install_kubectl, make_repo, use_key

REPO = Path(__file__).resolve().parent.parent
TOKEN = "ghp_not-a-real-token-0123456789"
TALOS_IDS = (90, 91, 92, 96, 97, 98)
VM_NODE, VM_ID = 96, 196
RESTIC_TARGETS = ("nas", "gcs")
DOMUM = "from domum_tasks.cli import main; main()"  # the `domum` console script


def ip(node_id: int) -> str:
    return f"127.0.0.{node_id}"


@dataclass
class World:
    root: Path
    repo: Path
    inventory: Path
    pve: PveSim
    cli: FakeCli
    kubectl: FakeKubectl
    fleet: SshdFleet
    units: Path
    repos: dict[str, Path]
    stop_booting: threading.Event = field(default_factory=threading.Event)
    spawned: subprocess.Popen[str] | None = None  # the `up` a kill test started last
    vm_boots: threading.Event = field(default_factory=threading.Event)  # the ISO boots (or hangs)

    # -- the stand-ins' state, changed under the stand-in's own lock (fakecli._locked_state)
    @contextlib.contextmanager
    def cli_state(self) -> Iterator[dict[str, Any]]:
        path = self.cli.state_path
        with open(f"{path}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads(path.read_text()) if path.exists() else {}
            yield state
            tmp = path.with_suffix(".test.tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(tmp, path)

    def update_state(self, **kw: Any) -> None:
        with self.cli_state() as st:
            st.update(kw)

    def set_node(self, node_id: int, stage: str) -> None:
        with self.cli_state() as st:
            st["nodes"][ip(node_id)] = stage

    # -- running `up`
    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-c", DOMUM, "up", "--yes", *self.options, *args]

    options: tuple[str, ...] = (
        "--poll",
        "0.2s",
        "--wait-timeout",
        "60s",
        "--flux-timeout",
        "60s",
        "--talos-timeout",
        "1m",
    )

    def up(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.argv(*args), "--unit-dir", str(self.units)],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*self.argv(*args), "--unit-dir", str(self.units)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.root,
        )

    # -- what was written
    def pve_writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.pve.pve.requests if m in ("POST", "PUT", "DELETE")]

    def snapshot_ids(self) -> dict[str, list[str]]:
        return {
            name: sorted(s["id"] for s in snapshots(path)) if (path / "config").exists() else []
            for name, path in self.repos.items()
        }

    def state_file(self) -> Path:
        return self.root / "xdg-state" / "domum" / "up.json"


def _inventory(pve: PveSim, fleet: SshdFleet, root: Path, units: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(pve.inventory_path.read_text())
    fleet_data = fleet.inventory_data()
    data["ssh"] = fleet_data["ssh"]
    for node_id in (93, 94, 95):  # the Raspberry Pi OS Pis: the fleet's user and ports
        data["nodes"][node_id] = fleet_data["nodes"][node_id]
    # config/domum.yaml's site: section, on loopback (tests/data/loopback.yaml has none)
    embedded = yaml.safe_load((REPO / "config" / "domum.yaml").read_text())["site"]
    data["site"] = {
        **embedded,
        "metallb": {
            "addresses": "127.0.0.200-127.0.0.229",
            "ingress_ip": "127.0.0.200",
            "dns_ip": "127.0.0.201",
        },
        "admin_node_exporter": "127.0.0.5:9100",
    }
    backup = data["backup"]
    backup.update(
        state_dir=str(root / "backup-state"),
        log_file=str(root / "backup-log" / "backup.log"),
        metrics_dir=str(root / "metrics"),
        lock_wait="3s",
    )
    for name in RESTIC_TARGETS:
        backup["targets"][name] = {"type": "restic", "repository": str(root / f"repo-{name}")}
    return data


def build(
    tmp_path: Path,
    monkeypatch: Any,
    pve: PveSim,
    cli: FakeCli,
    fleet: SshdFleet,
) -> World:
    fleet.reset()
    repo = make_repo(tmp_path, monkeypatch)  # DOMUM_REPO_ROOT, an isolated HOME
    mine = repo.key("mine")
    # the repository's .sops.yaml shape: the Talos bundle fully encrypted, above the cluster rule
    (repo.root / ".sops.yaml").write_text(
        "creation_rules:\n"
        f"  - path_regex: ^cluster/core/01-talos/secrets\\.sops\\.yaml$\n    age: {mine}\n"
        f"  - path_regex: ^config/.*\\.sops\\.ya?ml$\n    age: {mine}\n"
        "  - path_regex: ^cluster/.*\\.sops\\.ya?ml$\n"
        "    encrypted_regex: ^(data|stringData)$\n    mac_only_encrypted: true\n"
        f"    age: {mine}\n"
    )
    repo.encrypt("cluster/apps/demo/secret.sops.yaml", SECRET, mine)
    # cert-manager's DNS-01 token (preflight refuses the example's placeholder)
    cloudflare = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cloudflare-api-token", "namespace": "cert-manager"},
        "stringData": {"api-token": "Zq3-not-a-real-cloudflare-token-7f0e"},
    }
    repo.encrypt(
        "cluster/core/03-cert-manager/issuers/cloudflare-api-token.sops.yaml", cloudflare, mine
    )
    # Domum's own secrets: the config backup job requires the file (it copies it encrypted)
    secrets = {"proxmox": {"pve1": {"token_secret": "in-the-environment-instead"}}}
    repo.encrypt("config/secrets.sops.yaml", secrets, mine, k8s=False)
    overlay = repo.root / "cluster" / "overlays" / "homelab"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources: []\n")
    use_key(repo, monkeypatch, "mine")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    units = tmp_path / "units"
    units.mkdir()
    data = _inventory(pve, fleet, tmp_path, units)
    inventory = tmp_path / "domum.yaml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("DOMUM_INVENTORY", str(inventory))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    for name in RESTIC_TARGETS:
        monkeypatch.setenv(f"DOMUM_BACKUP_TARGETS_{name.upper()}_PASSWORD", PASSWORD)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    from domum_tasks.tools import find_tool

    real_kubectl = find_tool("kubectl")  # before the stand-in is there: the real one
    if real_kubectl is not None:
        monkeypatch.setenv("DOMUM_FAKEKUBECTL_REAL", str(real_kubectl))
    kubectl = install_kubectl(cli.bin_dir, tmp_path, monkeypatch)
    nodes = {ip(i): "maintenance" for i in TALOS_IDS}
    nodes[ip(VM_NODE)] = "absent"  # no VM yet
    # after apply-config a node reboots: its next 2 calls are refused (it installs, then boots)
    cli.set_state(nodes=nodes, reboot_calls=2, flux_installed=False, ready_after_polls=1)
    repos = {n: Path(data["backup"]["targets"][n]["repository"]) for n in RESTIC_TARGETS}
    return World(tmp_path, repo.root, inventory, pve, cli, kubectl, fleet, units, repos)


def boot_vms(world: World) -> threading.Thread:
    """The VM's console: once PVE runs it, Talos (booted from the ISO) answers in maintenance
    mode. Polls fakepve's model, flips the stand-in's node from absent to maintenance."""

    def loop() -> None:
        while not world.stop_booting.wait(0.05):
            if not world.vm_boots.is_set():
                continue
            vm = next((v for v in world.pve.pve.vms if v.vmid == VM_ID), None)
            if vm is None or vm.status != "running":
                continue
            with world.cli_state() as st:
                if st["nodes"].get(ip(VM_NODE)) == "absent":
                    st["nodes"][ip(VM_NODE)] = "maintenance"

    world.vm_boots.set()
    thread = threading.Thread(target=loop, name="vm-console", daemon=True)
    thread.start()
    return thread


@pytest.fixture
def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pve_sim: PveSim,
    fake_cli: FakeCli,
    sshd_fleet: SshdFleet,
    restic_template: Path,
) -> Iterator[World]:
    w = build(tmp_path, monkeypatch, pve_sim, fake_cli, sshd_fleet)
    boot_vms(w)
    yield w
    w.stop_booting.set()


WRITES = (("apply-config",), ("bootstrap",), ("gen",), ("kubeconfig",), ("upgrade",))


def cli_writes(world: World) -> list[list[str]]:
    """What the talosctl/flux stand-ins were asked to change (their log, since the last clear)."""
    out = []
    for argv in world.cli.calls:
        prog, words = argv[0], [a for a in argv[1:] if not a.startswith("-")]
        if prog == "talosctl" and words[:1] and (words[0],) in WRITES:
            out.append(argv)
        if prog == "flux" and words[:1] in (["bootstrap"], ["reconcile"], ["suspend"], ["resume"]):
            out.append(argv)
    return out


def finished(world: World, proc: Any) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "-- apps and what remains by hand" in proc.stdout  # the summary
    assert "domum up: done" in proc.stdout
    st = world.cli.state
    assert st["bootstrap_count"] == 1
    assert set(st["nodes"].values()) == {"configured"}
    assert st["flux_installed"] is True
    assert all(len(ids) == 2 for ids in world.snapshot_ids().values())  # config + etcd
