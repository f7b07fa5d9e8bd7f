"""The configpatcher cases both merges must pass: Domum's (domum_tasks/talos/genconfig/configpatch.py)
and the talosctl stand-in's (tests/fakes/talos_patch.py), so a divergence fails a test.

Upstream cases: ../shared/contracts/talos-upstream/configpatcher/CASES.md (testdata copied from
siderolabs/talos v1.13.9 pkg/machinery/config/configpatcher/). Own cases: tests/data/talos_patch/.

What is compared: the documents of the result, after `canonical()` removes what only Talos's
encoder decides. Domum never writes a merged config (talosctl renders it; Domum's merge only feeds
the rules), so the byte form (4-space indent, struct field order) is not Domum's to match. The
encoder's marks: `omitempty` drops empty lists and maps; `cluster: null`/`controlPlane: null` and
the legacy `machine.type: ""`/`machine.token: ""` are always written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from domum_tasks.talos import yaml12

UPSTREAM = Path(__file__).resolve().parents[1].parent / "shared" / "contracts" / "talos-upstream"
TESTDATA = UPSTREAM / "configpatcher" / "testdata"
OWN = Path(__file__).parent / "data" / "talos_patch"

# (case number and upstream test, base config, patches in order, expected file or error text)
APPLY_CASES: list[tuple[str, str, list[str], str]] = [
    (
        "01-TestApply",
        "apply/config.yaml",
        [
            "apply/strategic1.yaml",
            "apply/jsonpatch1.yaml",
            "apply/jsonpatch2.yaml",
            "apply/strategic2.yaml",
            "apply/strategic3.yaml",
        ],
        "apply/expected.yaml",
    ),
    (
        "02-TestApplyMultiDocFail",
        "multidoc/config.yaml",
        ["multidoc/jsonpatch.yaml", "multidoc/strategic1.yaml"],
        "error: JSON6902 patches are not supported for multi-document machine configuration",
    ),
    (
        "03-TestApplyMultiDoc",
        "multidoc/config.yaml",
        ["multidoc/strategic1.yaml", "multidoc/strategic2.yaml"],
        "multidoc/expected.yaml",
    ),
    (
        "04-TestApplyAuditPolicy",
        "auditpolicy/config.yaml",
        ["auditpolicy/patch1.yaml"],
        "auditpolicy/expected.yaml",
    ),
    (
        "05-TestApplyWithManifestNewline",
        "apply/config.yaml",
        ["apply/strategic4.yaml"],
        "apply/expected_manifests.yaml",
    ),
    (
        "06-TestApplyMultiDocDelete",
        "patchdelete/config.yaml",
        ["patchdelete/strategic1.yaml"],
        "patchdelete/expected.yaml",
    ),
    (
        "07-TestApplyMultiDocCPDelete",
        "patchdelete/controlplane_orig.yaml",
        [
            "patchdelete/strategic2.yaml",
            "patchdelete/strategic3.yaml",
            "patchdelete/strategic4.yaml",
        ],
        "patchdelete/controlplane_expected.yaml",
    ),
    (
        "08-TestPatchDeleteMissing",
        "patchdeletemissing/config.yaml",
        ["patchdeletemissing/strategic1.yaml"],
        "error: patch delete: path 'machine.network.hostname' in document '/v1alpha1': "
        "failed to delete path 'machine.network.hostname': lookup failed",
    ),
    (
        "09-TestPatchLink",
        "patchlink/base.yaml",
        ["patchlink/patch.yaml"],
        "patchlink/expected.yaml",
    ),
]

# load_test.go: the patches given, and the kinds LoadPatches returns ("json:N" = N operations)
REPLACE_SOME = '[{"op":"replace","path":"/some","value": []}]'
LOAD_CASES: list[tuple[str, list[str], list[str]]] = [
    ("10-TestLoadJSON", ["@patch.json"], ["json:1"]),
    ("11-TestLoadYAML", ["@patch.yaml"], ["json:1"]),
    ("12-TestLoadStrategic", ["@strategic.yaml"], ["strategic"]),
    ("13-TestLoadJSONPatches", ["@patch.json", "@patch.yaml", REPLACE_SOME], ["json:3"]),
    (
        "14-TestLoadMixedPatches",
        ["@patch.json", "@strategic.yaml", "@patch.yaml", REPLACE_SOME],
        ["json:1", "strategic", "json:2"],
    ),
    ("15-TestLoadStraightFilename", ["strategic.yaml", REPLACE_SOME], ["strategic", "json:1"]),
]


def own_cases() -> list[Path]:
    return sorted(OWN.glob("*.yaml"))


def read_own(path: Path) -> tuple[str, list[str], str]:
    """An own case: `# expect: <error text>` or `# expect: result` on line 1; documents split by
    `# --- base`, `# --- patch` (any number) and `# --- result` comment lines."""
    text = path.read_text()
    want = text.splitlines()[0].removeprefix("# expect: ")
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines()[1:]:
        if line.startswith("# --- "):
            sections.append((line.removeprefix("# --- ").strip(), []))
        elif sections:
            sections[-1][1].append(line)
    parts = {name: "\n".join(lines) + "\n" for name, lines in sections}
    patches = ["\n".join(lines) + "\n" for name, lines in sections if name == "patch"]
    expected = parts.get("result", "") if want == "result" else f"error: {want}"
    return parts["base"], patches, expected


def load(text: str) -> list[Any]:
    return yaml12.load_all(text)


def canonical(value: Any, path: tuple[str, ...] = ()) -> Any:
    """Drop what the Talos encoder decides (module docstring): null values, empty lists and
    maps, and the legacy document's empty machine.type/machine.token."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = canonical(item, (*path, str(key)))
            if item is None or item == {} or item == []:
                continue
            if path == ("machine",) and key in ("type", "token") and item == "":
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [canonical(v, path) for v in value]
    return value


def canonical_docs(docs: list[Any]) -> list[Any]:
    return [canonical(d) for d in docs]


def dump(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)
