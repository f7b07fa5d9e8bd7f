"""Checks on the committed files themselves: SOPS files against .sops.yaml, no age private key,
and the bootstrap manifest's Flux version (class 6 of the gitops-tree note)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ...secrets.recipients import rule_recipients
from .model import Finding

AGE_PRIVATE = "AGE-SECRET-KEY-1"
ENC = re.compile(r"^ENC\[AES256_GCM,")
GOTK_VERSION = re.compile(r"^# Flux Version: (v\S+)", re.MULTILINE)
SOPS_FILE = re.compile(r".*\.sops\.ya?ml$")


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_rules(repo_root: Path) -> tuple[list[dict[str, Any]], str]:
    path = repo_root / ".sops.yaml"
    if not path.is_file():
        return [], ""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        return [], f".sops.yaml is not valid YAML: {str(exc).splitlines()[0]}"
    return [r for r in data.get("creation_rules") or [] if isinstance(r, dict)], ""


def _rule_for(rules: list[dict[str, Any]], rel: str) -> dict[str, Any] | None:
    for rule in rules:  # sops uses the first rule whose path_regex matches
        regex = rule.get("path_regex")
        if regex is None or re.search(str(regex), rel):
            return rule
    return None


def _values(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in ("data", "stringData"):
        v = doc.get(field)
        if isinstance(v, dict):
            out.update(v)
    return out


def check_sops_files(repo_root: Path, tree: Path) -> Iterator[Finding]:
    rules, err = load_rules(repo_root)
    if err:
        yield Finding(".sops.yaml", "-", "sops", err)
    for path in sorted(tree.rglob("*")):
        if not path.is_file() or path.suffix not in (".yaml", ".yml", ".txt", ".agekey", ""):
            continue
        rel = _rel(repo_root, path)
        text = path.read_text(errors="replace")
        if AGE_PRIVATE in text:
            yield Finding(
                rel,
                "-",
                "sops",
                "contains an age private key (AGE-SECRET-KEY-1...): remove it from git and rotate the key; only public age1... recipients belong in the tree",
            )
        if not SOPS_FILE.match(path.name):
            continue
        try:
            docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
        except yaml.YAMLError as exc:
            yield Finding(rel, "-", "sops", f"not valid YAML: {str(exc).splitlines()[0]}")
            continue
        rule = _rule_for(rules, rel)
        want = set(rule_recipients(rule))
        for doc in docs:
            label = f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"
            meta = doc.get("sops")
            if not isinstance(meta, dict):
                yield Finding(
                    rel,
                    label,
                    "sops",
                    "a *.sops.yaml file that is not encrypted: run `sops --encrypt --in-place` on it before committing",
                )
                continue
            if not rules:
                yield Finding(
                    rel,
                    label,
                    "sops",
                    "no creation_rules in .sops.yaml at the repository root: add one with path_regex, encrypted_regex ^(data|stringData)$ and the age recipients",
                )
            elif rule is None:
                yield Finding(
                    rel,
                    label,
                    "sops",
                    "no .sops.yaml creation_rule's path_regex matches this file: add or widen one",
                )
            got = {str((a or {}).get("recipient", "")).strip() for a in meta.get("age") or []}
            if rule is not None and got != want:
                yield Finding(
                    rel,
                    label,
                    "sops",
                    f"encrypted to {sorted(got) or 'no age recipient'}, but .sops.yaml says {sorted(want)}: run `sops updatekeys {rel}`",
                )
            clear = sorted(k for k, v in _values(doc).items() if not ENC.match(str(v)))
            if clear:
                yield Finding(
                    rel,
                    label,
                    "sops",
                    f"values of {', '.join(clear)} are not encrypted: re-encrypt with encrypted_regex ^(data|stringData)$",
                )


def _is_placeholder(path: Path) -> bool:
    """A committed stand-in that `flux bootstrap` overwrites: comments only, no object and no
    generated header (so the overlay listing flux-system/ renders before bootstrap)."""
    text = path.read_text(errors="replace")
    return GOTK_VERSION.search(text) is None and all(
        not line.strip() or line.lstrip().startswith("#") or line.strip() == "---"
        for line in text.splitlines()
    )


def check_gotk(tree: Path, repo_root: Path, flux_version: str) -> Iterator[Finding]:
    found = [p for p in sorted(tree.rglob("gotk-components.yaml")) if not _is_placeholder(p)]
    if not found:
        yield Finding(
            _rel(repo_root, tree),
            "-",
            "bootstrap",
            f"not yet bootstrapped: no gotk-components.yaml in the tree (`inv flux.bootstrap` writes it with flux {flux_version})",
            "warning",
        )
        return
    for path in found:
        head = path.read_text(errors="replace")[:2000]
        m = GOTK_VERSION.search(head)
        rel = _rel(repo_root, path)
        if m is None:
            yield Finding(
                rel,
                "-",
                "bootstrap",
                "no '# Flux Version: vX.Y.Z' header: write it with `flux install --export` or `flux bootstrap`, do not edit it",
            )
        elif flux_version and m.group(1) != flux_version:
            yield Finding(
                rel,
                "-",
                "bootstrap",
                f"generated by flux {m.group(1)}, but Domum pins {flux_version}: re-run `inv flux.bootstrap` (or `flux install --export`) with the pinned flux",
            )


def has_sops_age_flag(tree: Path) -> bool:
    return any(
        "--sops-age-secret" in p.read_text(errors="replace")
        for p in tree.rglob("*.y*ml")
        if p.is_file()
    )
