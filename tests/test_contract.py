"""The session-wide contract check catches bad argvs and PVE calls, and is wired into pytest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from domum_tasks.plan import Cmd, Plan, PveCall, Wait
from tests.conftest import CONTRACTS, REPO
from tests.fixtures import contract

pytestmark = pytest.mark.skipif(not CONTRACTS.is_dir(), reason="../shared/contracts absent")

BAD_ARGVS = [
    ["talosctl", "--insecure", "apply-config", "-n", "127.0.0.90", "--file", "x.yaml"],
    ["talosctl", "gen", "config", "domum", "https://127.0.0.80:6443", "--nodes", "127.0.0.90"],
    ["/repo/.bin/flux", "suspend", "ks", "--all", "--timeout", "5"],
]
GOOD_ARGVS = [
    ["talosctl", "--talosconfig", "t", "-n", "127.0.0.90", "-e", "127.0.0.90", "bootstrap"],
    ["flux", "suspend", "kustomization", "--all"],
    ["kubectl", "get", "pods"],  # other programs are not judged
]


def test_checker_flags_each_bad_argv_with_its_reason() -> None:
    bad = contract.argv_problems(BAD_ARGVS + GOOD_ARGVS)
    assert [a for a, _ in bad] == BAD_ARGVS
    reasons = [why for _, why in bad]
    assert "swallowed_subcommand" in reasons[0]
    assert "unknown_flag: --nodes" in reasons[1]
    assert "bad_value" in reasons[2] and "Go duration" in reasons[2]


def test_assert_argv_valid() -> None:
    contract.assert_argv_valid(GOOD_ARGVS)
    with pytest.raises(AssertionError, match="swallowed_subcommand"):
        contract.assert_argv_valid(BAD_ARGVS[:1])


def test_assert_pve_valid_against_the_examples() -> None:
    valid = json.loads((CONTRACTS / "examples" / "calls-valid.json").read_text())
    invalid = json.loads((CONTRACTS / "examples" / "calls-invalid.json").read_text())
    contract.assert_pve_valid(valid)
    flagged = [c for c, _ in contract.pve_problems(invalid)]
    # two examples get only warnings (UPID of another node, deleting an unknown option): PVE
    # accepts them, so the session check does not fail on them either
    assert [c for c in invalid if c not in flagged] == [invalid[14], invalid[16]]
    with pytest.raises(AssertionError, match=r"unknown_param|bad_value|unknown_path"):
        contract.assert_pve_valid(invalid[:1])


@pytest.mark.contract_exempt("builds an invalid plan to test the helper")
def test_plan_json_helper() -> None:
    plan = Plan("t", [Cmd(("talosctl", "bootstrap", "--node", "127.0.0.90"))])
    with pytest.raises(AssertionError, match="--node"):
        contract.assert_plan_json_valid(plan.to_json())
    argvs, calls = contract.steps_from_json(
        json.dumps(
            [
                {
                    "kind": "wait",
                    "what": "x",
                    "deadline_s": 1,
                    "probe": {"kind": "cmd", "argv": ["talosctl", "health"]},
                },
                {"kind": "pve", "method": "GET", "path": "/nodes", "params": {}},
                {"kind": "cmd", "argv": ["sops", "-d", "x"]},
            ]
        )
    )
    assert argvs == [["talosctl", "health"]] and calls == [
        {"method": "GET", "path": "/nodes", "params": {}}
    ]


def test_plans_built_in_a_test_are_collected(request: pytest.FixtureRequest) -> None:
    collector = request.config._domum_contract
    probe = Cmd(("talosctl", "health", "-n", "127.0.0.90", "--wait-timeout", "5m"))
    plan = Plan("collected", [Wait("health", 300, probe=probe)])
    plan.add(PveCall("GET", "/nodes"))
    assert (plan, request.node.nodeid) in collector.plans
    argvs, calls = collector.gather()
    assert (list(probe.argv), f"{request.node.nodeid} (plan 'collected')") in argvs
    assert (
        {"method": "GET", "path": "/nodes", "params": {}},
        f"{request.node.nodeid} (plan 'collected')",
    ) in calls


@pytest.mark.contract_exempt("builds an invalid plan on purpose")
def test_exempt_tests_are_not_collected(request: pytest.FixtureRequest) -> None:
    plan = Plan("bad on purpose", [Cmd(("talosctl", "bogus"))])
    assert all(p is not plan for p, _ in request.config._domum_contract.plans)


INNER_TESTS = """
import subprocess
import sys
import pytest
from domum_tasks.plan import Cmd, Plan, PveCall

def test_plans_a_bad_argv():
    Plan("upgrade", [Cmd(("talosctl", "--insecure", "upgrade", "-n", "127.0.0.91"))])

def test_plans_a_bad_pve_call():
    Plan("vm", [PveCall("POST", "/nodes/pve/qemu/190/snapshot", {"snapname": "x", "bogus": 1})])

def test_runs_a_bad_argv_and_ignores_the_failure(fake_cli):
    subprocess.run(["flux", "reconcile", "kustomization", "apps", "--with-sources"])

@pytest.mark.contract_exempt("deliberate")
def test_exempt(fake_cli):
    Plan("x", [Cmd(("talosctl", "exempt-bogus"))])
    subprocess.run(["talosctl", "exempt-bogus-too"])

def test_good(fake_cli):
    Plan("ok", [Cmd(("flux", "check"))])
    subprocess.run(["flux", "check"], check=True)

def test_bad_plan_in_a_python_subprocess():
    code = "from domum_tasks.plan import Plan, Cmd; Plan('child', [Cmd(('flux', 'get', 'ks', '-a'))])"
    subprocess.run([sys.executable, "-c", code], check=True)

@pytest.mark.contract_exempt("deliberate")
def test_exempt_subprocess():
    code = "from domum_tasks.plan import Plan, Cmd; Plan('child', [Cmd(('flux', 'exempt-child'))])"
    subprocess.run([sys.executable, "-c", code], check=True)
"""


def _inner_pytest(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(body))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-p",
            "tests.fixtures.contract",
            "-p",
            "tests.fixtures.fake_cli",
            str(tmp_path / "test_inner.py"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "DOMUM_CONTRACT_PLAN_LOG"},
    )


def test_session_fails_on_violations(tmp_path: Path) -> None:
    """A whole inner pytest run: the tests pass, but the contract check fails the session."""
    proc = _inner_pytest(tmp_path, INNER_TESTS)
    out = proc.stdout
    assert "7 passed" in out, out + proc.stderr
    assert proc.returncode == 1, out
    assert "contract violations" in out
    assert "ARGV talosctl --insecure upgrade -n 127.0.0.91" in out
    assert "test_inner.py::test_plans_a_bad_argv (plan 'upgrade')" in out
    assert "PVE  POST /nodes/pve/qemu/190/snapshot" in out and "unknown_param" in out
    assert "ARGV flux reconcile kustomization apps --with-sources" in out
    assert "test_runs_a_bad_argv_and_ignores_the_failure (ran via fake_cli)" in out
    assert "ARGV flux get ks -a" in out
    assert "test_bad_plan_in_a_python_subprocess (plan 'child' in a subprocess)" in out
    assert "exempt-bogus" not in out and "exempt-child" not in out
    assert "4 contract violation(s)" in out


def test_session_passes_when_clean(tmp_path: Path) -> None:
    proc = _inner_pytest(
        tmp_path,
        INNER_TESTS.split("def test_plans_a_bad_argv")[0]
        + """
def test_good(fake_cli):
    Plan("ok", [Cmd(("talosctl", "version", "--client"))])
    subprocess.run(["flux", "check"], check=True)
""",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "contract check: 2 talosctl/flux argv and 0 PVE call(s) OK" in proc.stdout


def test_wired_into_the_suite(pytestconfig: pytest.Config) -> None:
    from tests import conftest

    assert "tests.fixtures.contract" in conftest.pytest_plugins
    assert isinstance(getattr(pytestconfig, "_domum_contract", None), contract.Collector)
    assert getattr(Plan.__init__, "_domum_contract", False)
