"""talosctl's configpatcher cases (siderolabs/talos v1.13.9) run against Domum's merge and the
stand-in's own merge; see tests/talos_patch_cases.py for what is compared and why."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from domum_tasks.talos.genconfig import configpatch
from tests import talos_patch_cases as cases
from tests.fakes import talos_patch as fake

needs_upstream = pytest.mark.skipif(
    not cases.TESTDATA.is_dir(),
    reason=f"upstream configpatcher vectors not found at {cases.TESTDATA} (../shared is absent)",
)


def domum_apply(base: str, patches: list[str]) -> list[Any]:
    return configpatch.apply(configpatch.load_documents(base), configpatch.load_patches(patches))


def fake_apply(base: str, patches: list[str]) -> list[Any]:
    return fake.patch_config(base, patches)


ENGINES = {"domum": domum_apply, "stand-in": fake_apply}


def check(engine: str, base: str, patches: list[str], expected: str) -> None:
    if expected.startswith("error: "):
        with pytest.raises(ValueError) as exc:
            ENGINES[engine](base, patches)
        assert expected.removeprefix("error: ") in str(exc.value)
        return
    got = ENGINES[engine](base, patches)
    want = cases.canonical_docs(cases.load(expected))
    assert cases.canonical_docs(got) == want, cases.dump(got)


@needs_upstream
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", cases.APPLY_CASES, ids=lambda c: c[0])
def test_upstream_apply_case(case: tuple[str, str, list[str], str], engine: str) -> None:
    _, base, patches, expected = case
    texts = [(cases.TESTDATA / p).read_text() for p in patches]
    if not expected.startswith("error: "):
        expected = (cases.TESTDATA / expected).read_text()
    check(engine, (cases.TESTDATA / base).read_text(), texts, expected)


def _domum_kinds(specs: list[str]) -> list[str]:
    # load.go LoadPatches reads `@file` and a bare file name; Domum's merge gets texts
    texts = [
        (cases.TESTDATA / s.removeprefix("@")).read_text() if not s.startswith("[") else s
        for s in specs
    ]
    out = []
    for p in configpatch.load_patches(texts):
        out.append(f"json:{len(p.ops)}" if isinstance(p, configpatch.JsonPatch) else "strategic")
    return out


@needs_upstream
@pytest.mark.parametrize("case", cases.LOAD_CASES, ids=lambda c: c[0])
def test_upstream_load_case(case: tuple[str, list[str], list[str]]) -> None:
    _, specs, kinds = case
    assert _domum_kinds(specs) == kinds
    assert fake.patch_kinds(specs, cwd=str(cases.TESTDATA)) == kinds


@needs_upstream
def test_upstream_load_strategic_reads_the_hostname() -> None:
    """Case 12: the strategic patch carries machine.network.hostname foo.bar."""
    (patch,) = configpatch.load_patches([(cases.TESTDATA / "strategic.yaml").read_text()])
    assert isinstance(patch, configpatch.StrategicPatch)
    (doc,) = patch.parts
    assert isinstance(doc, dict) and doc["machine"]["network"]["hostname"] == "foo.bar"


@needs_upstream
@pytest.mark.parametrize("engine", ENGINES)
def test_upstream_json6902_add(engine: str) -> None:
    """Case 16 (configpatcher_test.go TestJSON6902): add extraArgs to an empty kubelet. Compared
    as documents: the byte form is ghodss/yaml's, which Domum never writes."""
    patch = '[{"op": "add", "path": "/machine/kubelet/extraArgs", "value": {"cloud-provider": "external"}}]'
    check(
        engine,
        "machine:\n  kubelet: {}\n",
        [patch],
        "machine:\n  kubelet:\n    extraArgs:\n      cloud-provider: external\n",
    )


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", cases.own_cases(), ids=lambda p: p.stem)
def test_own_case(path: Path, engine: str) -> None:
    base, patches, expected = cases.read_own(path)
    check(engine, base, patches, expected)


def test_own_cases_exist() -> None:
    assert len(cases.own_cases()) >= 10


@needs_upstream
def test_stand_in_cli_patches_like_upstream(fake_cli: Any, tmp_path: Path) -> None:
    """`talosctl machineconfig patch` of the stand-in uses its own merge: case 6 end to end."""
    out = tmp_path / "out.yaml"
    subprocess.run(
        [
            "talosctl",
            "machineconfig",
            "patch",
            str(cases.TESTDATA / "patchdelete" / "config.yaml"),
            "--patch",
            f"@{cases.TESTDATA / 'patchdelete' / 'strategic1.yaml'}",
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=30,
        cwd=tmp_path,
    )
    want = cases.load((cases.TESTDATA / "patchdelete" / "expected.yaml").read_text())
    assert cases.canonical_docs(cases.load(out.read_text())) == cases.canonical_docs(want)
