"""The flux namespace: planned command lines, the bootstrap token handling, and the tasks end to
end against the strict flux stand-in (which rejects what the real CLI would)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from domum_tasks.errors import ConfigError
from domum_tasks.flux import tasks as F
from domum_tasks.flux.facts import diff_outcome, parse_table
from domum_tasks.flux.plan import (
    DiffTarget,
    bootstrap_plan,
    check_plan,
    diff_plan,
    reconcile_plan,
    resume_plan,
    suspend_plan,
)
from domum_tasks.inventory.loader import load
from domum_tasks.plan import Cmd
from tests import flux_tree

TOKEN = "ghp_not-a-real-token-0123456789"


def argvs(plan) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [list(s.argv) for s in plan.steps if isinstance(s, Cmd)]


def test_bootstrap_uses_inventory_repository_and_passes_token_by_env_only() -> None:
    plan = bootstrap_plan(load(), TOKEN)
    check, boot = plan.steps
    assert isinstance(boot, Cmd)
    assert boot.argv[:3] == ("flux", "bootstrap", "github")
    pairs = dict(zip(boot.argv[3::2], boot.argv[4::2], strict=False))
    assert pairs["--owner"] == "domum-lab" and pairs["--repository"] == "domum"
    assert pairs["--branch"] == "main" and pairs["--path"] == "cluster/overlays/homelab"
    assert "--kubeconfig" in boot.argv and "--namespace" in boot.argv
    assert boot.env == {"GITHUB_TOKEN": TOKEN}
    assert TOKEN not in plan.to_json() and TOKEN not in plan.render_text()
    assert isinstance(check, Cmd) and check.argv[1:3] == ("check", "--pre")


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (lambda inv: suspend_plan(inv, all_=True), ["flux", "suspend", "kustomization", "--all"]),
        (lambda inv: suspend_plan(inv, "apps"), ["flux", "suspend", "kustomization", "apps"]),
        (lambda inv: resume_plan(inv, all_=True), ["flux", "resume", "kustomization", "--all"]),
        (lambda inv: reconcile_plan(inv), ["flux", "reconcile", "kustomization", "flux-system"]),
        (
            lambda inv: reconcile_plan(inv, "apps", with_source=True),
            ["flux", "reconcile", "kustomization", "apps", "--with-source"],
        ),
        (lambda inv: check_plan(inv, pre=True), ["flux", "check", "--pre"]),
        (lambda inv: check_plan(inv), ["flux", "check"]),
    ],
)
def test_plans_name_their_target(plan, expected) -> None:  # type: ignore[no-untyped-def]
    (argv,) = argvs(plan(load()))
    assert argv[: len(expected)] == expected
    assert argv[len(expected) :][:1] == ["--kubeconfig"]  # nothing else slipped in


@pytest.mark.parametrize("kw", [{}, {"name": "apps", "all_": True}])
def test_suspend_needs_exactly_one_target(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="--kustomization NAME, or pass --all"):
        suspend_plan(load(), **kw)


def test_every_flux_argv_passes_the_contract(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import CONTRACTS

    if not CONTRACTS.exists():
        pytest.skip("../shared/contracts is absent")
    inv = load()
    planned = [
        *argvs(bootstrap_plan(inv, TOKEN)),
        *argvs(reconcile_plan(inv)),
        *argvs(reconcile_plan(inv, "apps", with_source=True, namespace="apps")),
        *argvs(suspend_plan(inv, all_=True)),
        *argvs(resume_plan(inv, "apps")),
        *argvs(check_plan(inv, pre=True)),
        *argvs(check_plan(inv)),
        *argvs(diff_plan(inv, [DiffTarget("apps", "flux-system", "./cluster/apps")])),
        *[list(a) for a in __import__("domum_tasks.flux.plan", fromlist=["x"]).status_argvs(inv)],
    ]
    path = tmp_path / "argv.json"
    path.write_text(json.dumps(planned))
    proc = subprocess.run(
        [sys.executable, str(CONTRACTS / "check_argv.py"), str(path), "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_bootstrap_without_token_fails_the_same_with_and_without_dry_run(
    monkeypatch: pytest.MonkeyPatch, dry_run: list[str]
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("DOMUM_FLUX_GIT_TOKEN", raising=False)
    monkeypatch.setenv("DOMUM_SECRETS_FILE", "/nonexistent/secrets.sops.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "flux.bootstrap", *dry_run],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("domum: no Git token for flux bootstrap: set GITHUB_TOKEN")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# --- parsers --------------------------------------------------------------------------------

TABLE = (
    "NAMESPACE  \tNAME       \tREVISION          \tSUSPENDED\tREADY\tMESSAGE                      \t\n"
    "flux-system\tflux-system\tmain@sha1:3f2e9c1d\tFalse    \tTrue \tApplied revision: main@sha1:3f2e9c1d\t\n"
    "flux-system\tapps       \t                  \tTrue     \tFalse\tkustomization build failed   \t\n"
)


def test_parse_table() -> None:
    rows = parse_table(TABLE)
    assert rows[0] == {
        "namespace": "flux-system",
        "name": "flux-system",
        "revision": "main@sha1:3f2e9c1d",
        "suspended": "False",
        "ready": "True",
        "message": "Applied revision: main@sha1:3f2e9c1d",
    }
    assert (rows[1]["revision"], rows[1]["ready"]) == ("", "False")
    assert parse_table("") == []


@pytest.mark.parametrize(
    ("rc", "out", "err", "want"),
    [
        (0, "", "► building objects\n", "same"),
        (1, "► Deployment/demo/demo drifted\n", "", "differs"),
        (1, "", "✗ invalid resource path\n", "error"),
        (1, "► x drifted\n", "✗ kustomization build failed\n", "error"),
        (2, "", "", "error"),
    ],
)
def test_diff_outcome(rc: int, out: str, err: str, want: str) -> None:
    assert diff_outcome(rc, out, err) == want


# --- tasks against the stand-in --------------------------------------------------------------


def flux_calls(fake_cli: Any) -> list[list[str]]:
    return [c[1 : c.index("--kubeconfig")] for c in fake_cli.calls_of("flux")]


def test_suspend_all_and_resume_one(fake_cli: Any) -> None:
    F.suspend(Context(), all=True)
    assert all(k["suspended"] for k in fake_cli.state["kustomizations"])
    F.resume(Context(), kustomization="apps")
    state = {k["name"]: k["suspended"] for k in fake_cli.state["kustomizations"]}
    assert state == {"flux-system": True, "infrastructure": True, "apps": False}
    assert flux_calls(fake_cli) == [
        ["suspend", "kustomization", "--all"],
        ["resume", "kustomization", "apps"],
    ]


def test_suspend_without_target_is_exit_2(fake_cli: Any) -> None:
    with pytest.raises(Exit) as err:
        F.suspend(Context())
    assert err.value.code == 2 and fake_cli.calls == []


def test_reconcile_unknown_kustomization_fails_like_flux(fake_cli: Any) -> None:
    with pytest.raises(Exit) as err:
        F.reconcile(Context(), kustomization="nope", with_source=True)
    assert err.value.code == 1 and "not found" in str(err.value.message)


def test_reconcile_with_source(fake_cli: Any) -> None:
    F.reconcile(Context(), kustomization="apps", with_source=True)
    assert flux_calls(fake_cli) == [["reconcile", "kustomization", "apps", "--with-source"]]


def test_check_pre(fake_cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    F.check(Context(), pre=True)
    assert "prerequisites checks passed" in capsys.readouterr().err
    assert flux_calls(fake_cli) == [["check", "--pre"]]


def test_status_table_and_json(fake_cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fake_cli.set_state(
        helmreleases=[
            {
                "name": "cert-manager",
                "namespace": "cert-manager",
                "ready": True,
                "revision": "v1.21.1",
            },
            {
                "name": "vault",
                "namespace": "vault",
                "ready": False,
                "message": "install retries exhausted",
            },
        ]
    )
    with pytest.raises(Exit) as err:
        F.status(Context(), json=True)
    assert err.value.code == 1 and "HelmRelease/vault/vault" in str(err.value.message)
    rows = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["name"], r["ready"]) for r in rows] == [
        ("Kustomization", "flux-system", "True"),
        ("Kustomization", "infrastructure", "True"),
        ("Kustomization", "apps", "True"),
        ("HelmRelease", "cert-manager", "True"),
        ("HelmRelease", "vault", "False"),
    ]
    assert rows[3]["revision"] == "v1.21.1"
    assert rows[4]["message"] == "install retries exhausted"
    assert rows[0]["revision"] == "main@sha1:3f2e9c1d"


def test_status_readable_table(fake_cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    F.status(Context())
    out = capsys.readouterr().out
    assert "flux status" in out and "cert-manager" in out and "Applied revision" in out


@pytest.fixture
def tree_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = flux_tree.write(tmp_path / "repo")
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(repo))
    monkeypatch.chdir(repo)
    return repo


def test_diff_one_kustomization_with_drift(
    fake_cli: Any, tree_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cli.set_state(
        kustomizations=[{"name": "apps", "namespace": "flux-system"}],
        drift={"apps": ["Deployment/demo/demo"]},
    )
    F.diff(Context(), kustomization="apps")
    assert flux_calls(fake_cli) == [
        ["diff", "kustomization", "apps", "--path", "./cluster/apps", "--strict-substitute"]
    ]
    captured = capsys.readouterr()
    assert "► Deployment/demo/demo drifted" in captured.out
    assert "drift in 1 Kustomization(s): apps" in captured.err


def test_diff_unknown_name_lists_the_valid_ones(fake_cli: Any, tree_repo: Path) -> None:
    with pytest.raises(Exit) as err:
        F.diff(Context(), kustomization="nope")
    assert err.value.code == 2 and "valid: apps, config, core, flux-system, namespaces" in str(
        err.value.message
    )


def test_diff_error_is_exit_1(fake_cli: Any, tree_repo: Path) -> None:
    fake_cli.set_state(kustomizations=[{"name": "core", "namespace": "flux-system"}])
    with pytest.raises(Exit) as err:  # apps is not in the cluster: flux fails, no drift
        F.diff(Context(), kustomization="apps")
    assert err.value.code == 1 and "flux diff failed for 1" in str(err.value.message)
