"""Flux 2.9's strict post-build substitution, one object at a time (flux/validate/subst.py)."""

from __future__ import annotations

import pytest

from domum_tasks.flux.validate.subst import substitute, substitute_text

VARS = {"DOMAIN": "lab.example.org", "EMPTY": "", "PORT": "8080"}


@pytest.mark.parametrize(
    ("text", "out", "missing"),
    [
        ("host: ${DOMAIN}", "host: lab.example.org", []),
        ("host: ${NOPE}", "host: ${NOPE}", ["NOPE"]),
        ("tz: ${TZ:=UTC}", "tz: UTC", []),
        ("tz: ${TZ:-UTC}", "tz: UTC", []),
        ("v: ${EMPTY:-fallback}", "v: fallback", []),
        ("v: ${EMPTY=fallback}", "v: fallback", []),
        # envsubst names may hold '-': this is the variable "NOPE-fallback", not a default.
        ("v: ${NOPE-fallback}", "v: ${NOPE-fallback}", ["NOPE-fallback"]),
        ("v: ${DOMAIN:+set}", "v: set", []),
        ("v: ${NOPE:+set}", "v: ", []),
        ("v: ${NOPE:?required}", "v: ${NOPE:?required}", ["NOPE"]),
        ("n: ${#NOPE}", "n: ${#NOPE}", ["NOPE"]),
        ("script: echo $${HOME}", "script: echo ${HOME}", []),
        ("bare: $HOME and $$", "bare: $HOME and $", []),  # envsubst reads only ${...}
        ("up: ${DOMAIN^^}", "up: lab.example.org", []),
        ("bad: ${ X }", "bad: ${ X }", ["{ X } (not a valid variable name)"]),
    ],
)
def test_substitute_text(text: str, out: str, missing: list[str]) -> None:
    assert substitute_text(text, VARS) == (out, missing)


def test_numbers_change_type_as_in_flux() -> None:
    doc = {"kind": "Service", "spec": {"port": "${PORT}"}}
    new, missing = substitute(doc, VARS)
    # "${PORT}" is a YAML string; once replaced, 8080 parses as an int, exactly as Flux does it.
    assert new["spec"]["port"] == 8080 and missing == []


def test_disabled_by_annotation_or_label() -> None:
    for field in ("annotations", "labels"):
        doc = {
            "kind": "ConfigMap",
            "metadata": {field: {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}},
            "data": {"dashboard": "${DS_PROMETHEUS}"},
        }
        assert substitute(doc, VARS) == (doc, [])
