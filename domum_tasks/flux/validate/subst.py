"""Flux 2.9 post-build substitution, strict, on one rendered object.

What kustomize-controller does (fluxcd/pkg kustomize_varsub.go, envsubst): the object is
serialised to YAML, `${VAR}` forms are replaced in that text, and the text is parsed again, so a
substituted number or boolean changes type exactly as it does in the cluster. `$${VAR}` is the
escape for a literal `${VAR}`; a bare `$VAR` is left alone. Objects labelled or annotated
`kustomize.toolkit.fluxcd.io/substitute: disabled` are skipped. Since Flux 2.9
(`StrictPostBuildSubstitutions` on by default) a variable that is not set and has no default
fails the whole Kustomization: that is an error here too.

Forms, as drone/envsubst parses them (a name is letters, digits, `_` and `-`, so `${V-d}` is
the variable "V-d", not a default): `${V}`; `${V:-d}`, `${V:=d}`, `${V=d}` (d when V is unset or
empty); `${V:+d}` (d when V is set); `${V:?msg}` (an error when V is unset). Other operators
(`${V^^}`, `${V/a/b}`, `${V:1:2}`, `${#V}`, ...) need V to be defined; its value is used
unchanged, as Domum checks that V exists, not the string operation.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

DISABLE_KEY = "kustomize.toolkit.fluxcd.io/substitute"
VAR_NAME = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")  # Flux's varsubRegex
_HEAD = re.compile(r"#?([A-Za-z0-9_-]+)")  # envsubst acceptIdent; `#` is the length form


class _Dumper(yaml.SafeDumper):
    pass


def disabled(doc: dict[str, Any]) -> bool:
    meta = doc.get("metadata") or {}
    for field in ("labels", "annotations"):
        values = meta.get(field) or {}
        if isinstance(values, dict) and values.get(DISABLE_KEY) == "disabled":
            return True
    return False


def substitute_text(text: str, variables: dict[str, str]) -> tuple[str, list[str]]:
    """(text with ${...} replaced, names that are undefined without a default, in order)."""
    out: list[str] = []
    missing: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        if text.startswith("$$", i):  # escape: `$${V}` -> `${V}`, `$$` -> `$`
            out.append("$")
            i += 2
            continue
        if not text.startswith("${", i):
            out.append(ch)
            i += 1
            continue
        end = text.find("}", i + 2)
        if end < 0:
            out.append(text[i:])
            break
        body = text[i + 2 : end]
        head = _HEAD.match(body)
        if head is None:
            missing.append(f"{{{body}}} (not a valid variable name)")
            out.append(text[i : end + 1])
            i = end + 1
            continue
        name, op = head.group(1), body[head.end() :]
        value = variables.get(name)
        if op[:2] in (":-", ":=") or op[:1] == "=":
            out.append(value if value else op[2:] if op[0] == ":" else op[1:])
        elif op[:2] == ":+":
            out.append(op[2:] if value else "")
        elif value is None:  # `${V}`, `${V:?msg}` and the string operations need V
            missing.append(name)
            out.append(text[i : end + 1])
        else:
            out.append(value)
        i = end + 1
    return "".join(out), missing


def substitute(doc: dict[str, Any], variables: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """(the object after substitution, undefined names). Unchanged when substitution is disabled."""
    if disabled(doc):
        return doc, []
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1 << 30, allow_unicode=True)
    if "$" not in text:
        return doc, []
    new_text, missing = substitute_text(text, variables)
    if new_text == text:
        return doc, missing
    try:
        new = yaml.safe_load(new_text)
    except yaml.YAMLError as exc:
        missing.append(f"(the substituted object is not valid YAML: {str(exc).splitlines()[0]})")
        return doc, missing
    return (new if isinstance(new, dict) else doc), missing
