"""The test-side PVE permission layer against PVE's own permission tests.

Every case of ../shared/contracts/pve-upstream/access-control/cases.yaml (pve-access-control
9.1.1's perm-test1..8 and api-get-permissions-test): each testdata/*.cfg is loaded into
tests/fixtures/pve_acl.py, and roles(), permissions() and GET /access/permissions must answer
exactly as upstream asserted (and, where the replay recorded them, with the same flags).
Skipped with a reason on a clone without ../shared.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONTRACTS
from tests.fixtures.pve_acl import BUILTIN, AclConfig, Forbidden

ACCESS = CONTRACTS / "pve-upstream" / "access-control"
pytestmark = pytest.mark.skipif(
    not (ACCESS / "cases.yaml").is_file(),
    reason="../shared/contracts/pve-upstream/access-control absent (PVE's own permission tests)",
)


@cache
def _cases() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ACCESS / "cases.yaml").read_text())
    return data


def _case_ids() -> list[str]:
    if not (ACCESS / "cases.yaml").is_file():
        return []
    return [c["id"] for c in _cases()["cases"]]


@cache
def _config(rel: str) -> AclConfig:
    return AclConfig.parse((ACCESS / rel).read_text())


def _case(case_id: str) -> dict[str, Any]:
    return next(c for c in _cases()["cases"] if c["id"] == case_id)


def test_every_case_is_collected() -> None:
    counts = _cases()["counts"]
    assert len(_case_ids()) == counts["total"] == 132


def test_builtin_roles_are_pves() -> None:
    want = {name: frozenset(privs) for name, privs in _cases()["builtin_roles"].items()}
    assert want == BUILTIN


@pytest.mark.parametrize("case_id", _case_ids())
def test_upstream_case(case_id: str) -> None:
    case = _case(case_id)
    cfg = _config(case["config"])
    if case["checks"] == "roles":
        got = cfg.roles_on(case["subject"], case["path"])
        assert ",".join(sorted(got)) == case["expected"]
        assert got == case["observed_flags"]
    elif case["checks"] == "permissions":
        for _ in range(2):  # upstream asks twice (the second answer comes from its cache)
            got = cfg.permissions(case["subject"], case["path"])
            assert ",".join(sorted(got)) == case["expected"]
            assert got == case["observed_flags"]
    else:
        params = case["params"] or {}
        if case["expected"] == "error":
            with pytest.raises(Forbidden, match=r"Permission check failed \(/access, Sys.Audit\)"):
                cfg.api_permissions(case["caller"], params)
        else:
            assert cfg.api_permissions(case["caller"], params) == case["expected_response"]


def test_effective_permissions_of_the_api_test() -> None:
    cfg = _config("testdata/api-get-permissions-test.cfg")
    for subject, entry in _cases()["effective_permissions"].items():
        assert cfg.effective(subject) == entry["value"]


def test_path_answer_has_its_key_even_when_empty() -> None:
    """Observed in the replay (CASES.md): with ?path= the answer always has that one key."""
    cfg = _config("testdata/api-get-permissions-test.cfg")
    assert cfg.api_permissions("auditor@pam!privsep", {"path": "/access"}) == {"/access": {}}
    assert cfg.api_permissions("stranger@pve", {"path": "/vms/100"}) == {
        "/vms/100": {"VM.Audit": 1, "VM.Console": 1, "VM.PowerMgmt": 1}
    }


def test_all_testdata_configs_parse() -> None:
    for cfg in sorted(Path(ACCESS / "testdata").glob("*.cfg")):
        assert AclConfig.parse(cfg.read_text()).users
