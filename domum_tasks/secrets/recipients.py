"""Who a SOPS file is encrypted to, read from its metadata (never decrypted), and who
`.sops.yaml` says it should be encrypted to. Pure file reading: no sops, no key material.

A file is a SOPS file when its metadata says so (a YAML/JSON document with a top-level `sops`
mapping holding a `mac`, or a dotenv/INI file with sops's flattened keys), whatever its name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Recipients nobody can decrypt for: the literal placeholder of .sops.yaml, and the throwaway key
# the committed example Secrets under cluster/ are encrypted to (its private half was never kept,
# see the comment on the cluster/ rule of .sops.yaml).
PLACEHOLDER_LITERAL = "age1REPLACE-WITH-YOUR-AGE-PUBLIC-KEY"
THROWAWAY_RECIPIENT = "age1qkkcm0hz3c044ac678sxvy39e3w66q2qwf6celw7a8pgsp2e8e3sdfcsmv"
PLACEHOLDERS = frozenset({PLACEHOLDER_LITERAL, THROWAWAY_RECIPIENT})

# Master-key types other than age that sops records (a file with one of these may still be
# decryptable by its owner even when no age key matches).
OTHER_KEY_TYPES = ("pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms")
SKIP_DIRS = frozenset({".git", ".venv", "node_modules", "__pycache__"})
# dotenv: sops_age__list_0__map_recipient=age1...; INI: a [sops] section with the same keys.
FLAT_RECIPIENT = re.compile(r"^\s*(?:sops_)?age__list_\d+__map_recipient\s*=\s*(\S+)", re.M)
FLAT_MAC = re.compile(r"^\s*(?:sops_)?mac\s*=", re.M)
FLAT_OTHER = re.compile(r"^\s*(?:sops_)?(pgp|kms|gcp_kms|azure_kv|hc_vault)__list_", re.M)


@dataclass(frozen=True)
class SopsFile:
    path: Path
    rel: str  # relative to the repository root, '/'-separated
    recipients: frozenset[str]  # age recipients in the metadata
    other_keys: bool = False  # has non-age master keys too
    kinds: tuple[str, ...] = field(default=())  # Kubernetes kinds of its documents

    @property
    def is_kubernetes(self) -> bool:
        """Flux decrypts Kubernetes objects; a document without `kind` (the Talos secrets
        bundle) is never applied, so never decrypted in the cluster."""
        return bool(self.kinds) or not self.rel.endswith((".yaml", ".yml", ".json"))

    @property
    def placeholder(self) -> bool:
        return bool(self.recipients & PLACEHOLDERS)


def _yaml_docs(text: str) -> list[Any] | None:
    import yaml

    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return None


def _age_of(meta: dict[str, Any]) -> set[str]:
    out = {str((a or {}).get("recipient", "")).strip() for a in meta.get("age") or []}
    for group in meta.get("key_groups") or []:
        out |= {str((a or {}).get("recipient", "")).strip() for a in (group or {}).get("age") or []}
    return {r for r in out if r}


def _other_of(meta: dict[str, Any]) -> bool:
    groups = [meta, *(g for g in meta.get("key_groups") or [] if isinstance(g, dict))]
    return any(g.get(k) for g in groups for k in OTHER_KEY_TYPES)


def read(path: Path, root: Path) -> SopsFile | None:
    """The SOPS metadata of `path`, or None when it is not a SOPS-encrypted file."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    if "sops" not in text or "mac" not in text:  # cheap filter before parsing
        return None
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # a symlink out of the repository: name it as found
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    docs = _yaml_docs(text)
    metas = [d for d in docs or [] if isinstance(d, dict) and isinstance(d.get("sops"), dict)]
    metas = [d for d in metas if "mac" in d["sops"]]
    if metas:
        recipients: set[str] = set()
        for d in metas:
            recipients |= _age_of(d["sops"])
        kinds = tuple(str(d["kind"]) for d in metas if d.get("kind"))
        other = any(_other_of(d["sops"]) for d in metas)
        return SopsFile(path, rel, frozenset(recipients), other, kinds)
    if FLAT_MAC.search(text) and (FLAT_RECIPIENT.search(text) or FLAT_OTHER.search(text)):
        found = frozenset(FLAT_RECIPIENT.findall(text))
        return SopsFile(path, rel, found, bool(FLAT_OTHER.search(text)))
    return None


def scan(root: Path, dirs: Iterable[str]) -> list[SopsFile]:
    """Every SOPS file under root/<dir> for each dir, sorted by path."""
    out: list[SopsFile] = []
    for d in dirs:
        base = root / d
        if base.is_dir():
            out += [f for p in _files(base) if (f := read(p, root)) is not None]
    return sorted(out, key=lambda f: f.rel)


def _files(base: Path) -> Iterator[Path]:
    for p in sorted(base.rglob("*")):
        if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(base).parts):
            yield p


# ---------------------------------------------------------------- .sops.yaml
def load_rules(sops_yaml: Path) -> list[dict[str, Any]]:
    """The creation_rules of a .sops.yaml ([] when it is missing)."""
    import yaml

    from ..errors import ConfigError

    if not sops_yaml.is_file():
        return []
    try:
        data = yaml.safe_load(sops_yaml.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{sops_yaml}: not valid YAML ({str(exc).splitlines()[0]})") from None
    rules = data.get("creation_rules") if isinstance(data, dict) else None
    return [r for r in rules or [] if isinstance(r, dict)]


def rule_for(rules: list[dict[str, Any]], rel: str) -> dict[str, Any] | None:
    """sops takes the first rule whose path_regex matches the path relative to the config's
    directory (re.search semantics, Go's regexp.MatchString); a rule without one matches all."""
    for rule in rules:
        regex = rule.get("path_regex")
        if regex is None or re.search(str(regex), rel):
            return rule
    return None


def rule_recipients(rule: dict[str, Any] | None) -> frozenset[str]:
    if rule is None:
        return frozenset()
    found: set[str] = set()
    age = rule.get("age")
    if isinstance(age, str):
        found |= {a.strip() for a in age.split(",") if a.strip()}
    elif isinstance(age, list):
        found |= {str(a).strip() for a in age}
    for group in rule.get("key_groups") or []:
        found |= {str(a).strip() for a in (group or {}).get("age") or []}
    return frozenset(found)


def short(recipient: str) -> str:
    """age1abcdefgh…wxyz, and the placeholder named as such."""
    if recipient == THROWAWAY_RECIPIENT:
        return "the throwaway placeholder age1qkkcm0…csmv"
    if recipient == PLACEHOLDER_LITERAL:
        return recipient
    return f"{recipient[:12]}…{recipient[-4:]}" if len(recipient) > 20 else recipient


def shown(recipients: Iterable[str]) -> str:
    items = sorted(recipients)
    return ", ".join(short(r) for r in items) if items else "no age recipient"
