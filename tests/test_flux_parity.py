"""Dry-run parity for the flux namespace against the strict flux stand-in (fake_cli): the plan
`--dry-run --json` prints is the plan the real run executes, step for step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domum_tasks.flux import tasks as F
from tests import flux_tree

Parity = Any  # the plan_parity fixture's checker


def argv_heads(plans: list[list[dict[str, Any]]]) -> list[list[str]]:
    return [s["argv"][1 : s["argv"].index("--kubeconfig")] for p in plans for s in p]


@pytest.fixture
def tree_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = flux_tree.write(tmp_path / "repo")
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(repo))
    monkeypatch.chdir(repo)
    return repo


@pytest.mark.parity("flux.bootstrap")
def test_bootstrap_parity(
    plan_parity: Parity, fake_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.sops_repo import SECRET, identity, install_kubectl, make_repo, use_key

    repo = make_repo(tmp_path, monkeypatch)  # a tree encrypted to the user's own key
    mine = repo.key("mine")
    repo.write_sops_yaml(mine, mine)
    repo.encrypt("cluster/apps/demo/secret.sops.yaml", SECRET, mine)
    (repo.root / "clusterconfig").mkdir()
    (repo.root / "clusterconfig" / "kubeconfig").write_text("apiVersion: v1\n")
    use_key(repo, monkeypatch, "mine")
    kubectl = install_kubectl(fake_cli.bin_dir, tmp_path, monkeypatch)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_not-a-real-token-0123456789")
    plans = plan_parity(F.bootstrap)
    kinds = [s["kind"] for p in plans for s in p]
    assert kinds == ["cmd", "local", "cmd"]
    cmds = [[s for s in p if s["kind"] == "cmd"] for p in plans]
    assert [h[:2] for h in argv_heads(cmds)] == [["check", "--pre"], ["bootstrap", "github"]]
    assert "ghp_not-a-real-token" not in str(plans)
    assert identity(repo.keys["mine"]) not in str(plans)
    assert [r["applied"][-1] for r in kubectl.records] == ["Secret/flux-system/sops-age"]


@pytest.mark.parity("flux.check")
def test_check_parity(plan_parity: Parity, fake_cli: Any) -> None:
    assert argv_heads(plan_parity(F.check)) == [["check"]]


@pytest.mark.parity("flux.diff")
def test_diff_parity(plan_parity: Parity, fake_cli: Any, tree_repo: Path) -> None:
    fake_cli.set_state(
        kustomizations=[{"name": "apps", "namespace": "flux-system"}],
        drift={"apps": ["Deployment/demo/demo"]},
    )
    plans = plan_parity(F.diff, kustomization="apps")  # drift (flux exits 1) is no failure
    assert argv_heads(plans) == [
        ["diff", "kustomization", "apps", "--path", "./cluster/apps", "--strict-substitute"]
    ]


@pytest.mark.parity("flux.reconcile")
def test_reconcile_parity(plan_parity: Parity, fake_cli: Any) -> None:
    plans = plan_parity(F.reconcile, kustomization="apps", with_source=True)
    assert argv_heads(plans) == [["reconcile", "kustomization", "apps", "--with-source"]]


@pytest.mark.parity("flux.suspend")
def test_suspend_parity(plan_parity: Parity, fake_cli: Any) -> None:
    plan_parity(F.suspend, all=True)
    assert all(k["suspended"] for k in fake_cli.state["kustomizations"])


@pytest.mark.parity("flux.resume")
def test_resume_parity(plan_parity: Parity, fake_cli: Any) -> None:
    plan_parity(F.resume, kustomization="apps")
    state = {k["name"]: k["suspended"] for k in fake_cli.state["kustomizations"]}
    assert state["apps"] is False


@pytest.mark.parity("flux.render-settings")
def test_render_settings_parity(
    plan_parity: Parity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domum_tasks.flux.settings import SETTINGS_PATH
    from tests.test_flux_settings import write_inventory

    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(root))
    monkeypatch.setenv("DOMUM_INVENTORY", str(write_inventory(tmp_path)))
    plans = plan_parity(F.render_settings)
    assert [s["kind"] for p in plans for s in p] == ["write"]
    assert (root / SETTINGS_PATH).is_file()


def test_diff_without_flux_fails_the_same_both_ways(
    fake_cli_absent: Any, tree_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """flux missing: the dry-run shows the plan, then exits 3 as the real run does."""
    from invoke import Context, Exit

    codes = []
    for dry in (True, False):
        with pytest.raises(Exit) as err:
            F.diff(Context(), kustomization="apps", dry_run=dry)
        codes.append((err.value.code, str(err.value.message)))
    assert codes[0] == codes[1] and codes[0][0] == 3
