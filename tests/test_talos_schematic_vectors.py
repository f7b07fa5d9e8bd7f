"""Schematic ids as the Image Factory computes them: sha256 of go-yaml's Marshal of its struct.

Oracles: the factory's own id vectors (../shared/contracts/talos-upstream/image-factory/, from
siderolabs/image-factory pkg/schematic/schematic_test.go), and go-yaml's own Marshal cases
(yaml/go-yaml v4.0.0-rc.6 testdata/encode.yaml, cited by case name below). The kernel-argument
and newline cases have no upstream id: their expected YAML text is derived from go-yaml's rules
(internal/libyaml/emitter.go analyzeScalar/selectScalarStyle, representer.go stringv), and the
id is the sha256 of that text, as the factory's ID() takes it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from domum_tasks.talos import goyaml
from domum_tasks.talos import schematic as S
from tests.conftest import SHARED

VECTORS = SHARED / "contracts" / "talos-upstream" / "image-factory" / "schematic-vectors.yaml"


def _vectors() -> list[Any]:
    if not VECTORS.is_file():
        return [
            pytest.param(None, marks=pytest.mark.skip(reason=f"{VECTORS} absent (no ../shared)"))
        ]
    data = yaml.safe_load(VECTORS.read_text())
    return [pytest.param(v, id=f"{v['test']}-{v['line']}") for v in data["vectors"]]


@pytest.mark.parametrize("vector", _vectors())
def test_factory_vector(vector: dict[str, Any]) -> None:
    text = vector.get("input_yaml") or vector["input_yaml_equivalent"]
    canonical = S.canonical_yaml_of(yaml.safe_load(text) or {})
    assert canonical == vector["canonical_yaml"]
    assert hashlib.sha256(canonical.encode()).hexdigest() == vector["expected_id"]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- kernel arguments with ':' and values with newlines -------------------------------------------


def test_colon_in_kernel_args_stays_plain() -> None:
    """A ':' is a block indicator only before a space or at the end (analyzeScalar), and these
    resolve to !!str (no int/float/timestamp/bool), so go-yaml writes them plain."""
    sch = S.Schematic(
        extra_kernel_args=(
            "talos.config=https://cfg.example/m?node=92",
            "ip=10.0.0.92::10.0.0.1:255.255.255.0:domum-w1:eth0:off",
            "console=ttyS0,115200",
            "-lockdown",  # '-' is an indicator only before a space
        )
    )
    want = (
        "customization:\n    extraKernelArgs:\n"
        "        - talos.config=https://cfg.example/m?node=92\n"
        "        - ip=10.0.0.92::10.0.0.1:255.255.255.0:domum-w1:eth0:off\n"
        "        - console=ttyS0,115200\n"
        "        - -lockdown\n"
    )
    assert sch.canonical_yaml() == want
    assert sch.local_id == sha(want)


def test_quoting_choices() -> None:
    """YAML 1.1 booleans single-quoted (representer isOldBool), strings that would resolve to
    another type double-quoted (desolver, QuoteLegacy), ': ' and ' #' single-quoted (emitter),
    a tab double-quoted (single quotes cannot hold it)."""
    args = ("on", "No", "true", "12", "1:30", "a: b", "x #y", "tab\there", "it's", "")
    sch = S.Schematic(extra_kernel_args=args)
    want = (
        "customization:\n    extraKernelArgs:\n"
        "        - 'on'\n        - 'No'\n        - \"true\"\n        - \"12\"\n"
        "        - '1:30'\n        - 'a: b'\n        - 'x #y'\n        - \"tab\\there\"\n"
        "        - it's\n"
        '        - ""\n'  # "" resolves to null
    )
    assert sch.canonical_yaml() == want
    assert yaml.safe_load(want)["customization"]["extraKernelArgs"] == list(args)


def test_value_ending_in_a_newline_is_literal_and_the_document_stays_valid() -> None:
    """A string with a newline is literal (`|`) when 2+ characters and not only whitespace;
    one final newline is the default clip chomping, none is `|-`, more is `|+`
    (writeBlockScalarHints); content indent is the next multiple of 4 under a key and +2 under
    a sequence item (increaseIndentCompact)."""
    sch = S.Schematic(
        overlay_image=S.RPI_OVERLAY_IMAGE,
        overlay_name=S.RPI_OVERLAY_NAME,
        overlay_options=(("configTxtAppend", "dtoverlay=vc4-kms-v3d\ndtparam=audio=on\n"),),
        extra_kernel_args=("a\nb", "c\n\n"),
    )
    want = (
        "overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_generic\n"
        "    options:\n        configTxtAppend: |\n"
        "            dtoverlay=vc4-kms-v3d\n            dtparam=audio=on\n"
        "customization:\n    extraKernelArgs:\n"
        "        - |-\n          a\n          b\n"
        "        - |+\n          c\n\n"
    )
    assert sch.canonical_yaml() == want
    assert sch.local_id == sha(want)
    assert yaml.safe_load(want)["overlay"]["options"]["configTxtAppend"].endswith("audio=on\n")
    assert yaml.safe_load(want)["customization"]["extraKernelArgs"] == ["a\nb", "c\n\n"]


# --- go-yaml's own Marshal cases (yaml/go-yaml v4.0.0-rc.6 testdata/encode.yaml) ------------------


@pytest.mark.parametrize(
    ("case", "doc", "want"),
    [
        ('string "true" in map[string]string', {"v": "true"}, 'v: "true"\n'),
        ('string "10" in map[string]any', {"v": "10"}, 'v: "10"\n'),
        ("empty string in map[string]any", {"v": ""}, 'v: ""\n'),
        ("dash string requiring quotes", {"a": "-"}, "a: '-'\n"),
        ("colon-separated string (base 60 float compat)", {"a": "1:1"}, "a: '1:1'\n"),
        ("timestamp-like string gets quoted", {"a": "2015-02-24T18:19:39Z"}, 'a: "2015-02-24T18:19:39Z"\n'),
        ("string containing colon-space", {"a": "b: c"}, "a: 'b: c'\n"),
        ("string with hash comment", {"a": "Hello #comment"}, "a: 'Hello #comment'\n"),
        ("string with only tabs and newlines (quoted)", {"a": "\t\n\t\n"}, 'a: "\\t\\n\\t\\n"\n'),
        ("merge key as value", {"foo": "<<"}, "foo: '<<'\n"),
        ("string slice with multiline element", {"v": ["A", "B\nC"]}, "v:\n    - A\n    - |-\n      B\n      C\n"),
        ("string starting with newline in map", {"v": "\nhi"}, "v: |-\n\n    hi\n"),
        ("nested structure with leading newline", {"v": [{"v1": "\nhi"}]}, "v:\n    - v1: |-\n\n        hi\n"),
    ],
)  # fmt: skip
def test_go_yaml_encode_cases(case: str, doc: dict[str, Any], want: str) -> None:
    assert goyaml.marshal(doc) == want, case


@pytest.mark.parametrize(
    ("value", "style"),
    [  # testdata/encode.yaml "scalar style" / "whitespace" cases (string at the root)
        ("\n", "double"), ("hello\nworld", "literal"), ("123", "double"), ("true", "double"),
        (" This starts with space\nand is long enough\nfor literal style", "literal"),
        ("a\n", "literal"), (" \n", "double"), ("\n \n", "double"), ("hello\n", "literal"),
        (" \nhello", "double"), ("  hello  \n", "double"), ("hello  \n", "double"),
        ("hello\n  ", "double"), (" hello\n", "literal"),
    ],
)  # fmt: skip
def test_go_yaml_scalar_styles(value: str, style: str) -> None:
    assert goyaml.scalar_style(value) == style


def test_map_keys_in_go_yaml_order() -> None:
    """representer.go keyList.Less: at the first difference a non-letter sorts before a letter
    (unless a digit run precedes it), letters by code point, digit runs as numbers."""
    assert goyaml.sorted_keys(["b", "a10", "a2", "A", "_x"]) == ["_x", "A", "a2", "a10", "b"]


def test_unknown_schematic_field_is_refused_as_the_factory_does() -> None:
    with pytest.raises(ValueError, match="something"):
        S.canonical_yaml_of({"something": None})


def test_no_watchdog_in_pi_schematics(tmp_path: Path) -> None:
    from domum_tasks.inventory.loader import load
    from tests.conftest import LOOPBACK_INVENTORY

    inv = load(LOOPBACK_INVENTORY)
    for node in inv.nodes.values():
        if node.os == "talos" and node.is_pi:
            assert "watchdog" not in S.schematic_for(inv, node).canonical_yaml()
