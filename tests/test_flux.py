"""The flux namespace: planned command lines and the bootstrap token handling."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from domum_tasks.flux.plan import bootstrap_plan, reconcile_plan, resume_plan, suspend_plan
from domum_tasks.inventory import load
from domum_tasks.plan import Cmd

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
    assert pairs["--branch"] == "main" and pairs["--path"] == "cluster"
    assert "--kubeconfig" in boot.argv and "--namespace" in boot.argv
    assert boot.env == {"GITHUB_TOKEN": TOKEN}
    assert TOKEN not in plan.to_json() and TOKEN not in plan.render_text()
    assert isinstance(check, Cmd) and check.argv[1:3] == ("check", "--pre")


@pytest.mark.parametrize(
    ("plan_fn", "name", "expected"),
    [
        (suspend_plan, "", ["flux", "suspend", "kustomization", "--all"]),
        (suspend_plan, "apps", ["flux", "suspend", "kustomization", "apps"]),
        (resume_plan, "", ["flux", "resume", "kustomization", "--all"]),
        (reconcile_plan, "flux-system", ["flux", "reconcile", "kustomization", "flux-system"]),
    ],
)
def test_plans_name_their_target(plan_fn, name, expected) -> None:  # type: ignore[no-untyped-def]
    (argv,) = argvs(plan_fn(load(), name))
    assert argv[: len(expected)] == expected


def test_every_flux_argv_passes_the_contract(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import CONTRACTS

    if not CONTRACTS.exists():
        pytest.skip("../shared/contracts is absent")
    inv = load()
    planned = [
        *argvs(bootstrap_plan(inv, TOKEN)),
        *argvs(reconcile_plan(inv)),
        *argvs(reconcile_plan(inv, "apps", with_source=False)),
        *argvs(suspend_plan(inv)),
        *argvs(resume_plan(inv, "apps")),
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


def test_bootstrap_without_token_is_a_clear_config_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("DOMUM_FLUX_GIT_TOKEN", raising=False)
    monkeypatch.setenv("DOMUM_SECRETS_FILE", "/nonexistent/secrets.sops.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "flux.bootstrap"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "set GITHUB_TOKEN" in proc.stderr and "Traceback" not in proc.stderr
