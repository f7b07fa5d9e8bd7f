"""`domum status` with each part down in turn: that part's row says why, every other row is
healthy and still shown, and the exit is 1 (the lab: tests/status_lab.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.status_lab import Homelab, by_name, homelab, snapshot, status  # noqa: F401

pytestmark = pytest.mark.integration


def _ks_failing(lab: Homelab) -> None:
    lab.cli.set_state(kustomizations=[
        {"name": "flux-system", "namespace": "flux-system", "ready": True},
        {"name": "apps", "namespace": "flux-system", "ready": False,
         "message": "kustomize build failed: accumulating resources: missing.yaml"}])  # fmt: skip


def _hr_failing(lab: Homelab) -> None:
    lab.cli.set_state(helmreleases=[
        {"name": "traefik", "namespace": "traefik", "ready": False,
         "message": "install retries exhausted"}])  # fmt: skip


def _pve_unreachable(lab: Homelab) -> None:
    lab.data["proxmox"]["pve1"]["api_url"] = "https://127.0.0.10:9/"  # discard: nothing listens
    lab.save()


def _stale(lab: Homelab) -> None:
    lab.forget("config")
    snapshot(lab.repo, "config", lab.src, when="2020-01-01 03:20:00")


DOWN: dict[str, tuple[Callable[[Homelab], Any], str, str]] = {
    "talos node unhealthy": (
        lambda lab: lab.cli.set_state(unhealthy=["127.0.0.92"]),
        "talos domum-xr2 (92)", "not ready"),
    "etcd member down": (
        lambda lab: lab.cli.set_state(etcd_down=["127.0.0.91"]),
        "etcd domum-cp2 (91)", "etcd is not running on this node"),
    "kustomization failing": (
        _ks_failing, "flux Kustomization flux-system/apps", "missing.yaml"),
    "helmrelease failing": (
        _hr_failing, "flux HelmRelease traefik/traefik", "install retries exhausted"),
    "pve host unreachable": (_pve_unreachable, "proxmox host pve1", "unreachable"),
    "guest stopped": (
        lambda lab: setattr(lab.cts["mqtt"], "status", "stopped"),
        "proxmox lxc 211 domum-mqtt", "stopped"),
    "pi sshd down": (None, "pi domum-zigbee (94)", "connection refused"),  # type: ignore[dict-item]
    "backup without snapshot": (
        lambda lab: lab.forget("edge-pis"), "backup edge-pis -> a", "no complete snapshot"),
    "backup stale": (_stale, "backup config -> a", "stale: complete snapshot"),
    "backup drill failed": (
        lambda lab: lab.record("drill", "etcd", {"ok": False, "last_run": 1.0,
                                                 "message": "etcd: sha256 trailer mismatch"}),
        "backup etcd -> a", "last drill failed: etcd: sha256 trailer mismatch"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(DOWN))
def test_each_part_down_in_turn(homelab: Homelab, capsys: Any, case: str) -> None:
    make_down, name, reason = DOWN[case]
    if make_down is None:  # the Pi: its sshd stopped for the run
        with homelab.fleet.down(94):
            code, rows, message = status(capsys)
    else:
        make_down(homelab)
        code, rows, message = status(capsys)
    assert code == 1
    rows_ = by_name(rows)
    bad = [n for n, r in rows_.items() if not r["ok"]]
    assert bad == [name], (bad, [rows_[n]["detail"] for n in bad])
    assert reason in rows_[name]["detail"], rows_[name]
    assert f"{name}: " in message and "1 of " in message
    # every other part is still on the screen
    assert {r["part"] for r in rows} == {"talos", "etcd", "flux", "proxmox", "pi", "backup"}
