"""`inv secrets.rekey`: re-encrypt every SOPS file of the repository (config/ and cluster/) to
the recipients `.sops.yaml` names for it, with `sops updatekeys -y`.

sops re-wraps a file's data key for the new recipients, so it must first unwrap it with a key
the file is already encrypted to. A file encrypted only to recipients whose private key the user
does not hold (the committed examples under cluster/ are encrypted to a throwaway key that was
never kept) cannot be re-keyed by anyone: it has to be re-created with its values. The planner
says so per file, with the command that does it, and the task ends with exit 2 after re-keying
the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..plan import Cmd, Plan
from . import recipients as R

REKEY_DIRS = ("config", "cluster")
SOPS_ENV = {"SOPS_DISABLE_VERSION_CHECK": "1"}


@dataclass(frozen=True)
class Change:
    file: R.SopsFile
    new: frozenset[str]


@dataclass
class Rekey:
    plan: Plan
    changes: list[Change]
    stuck: list[Change]  # the user holds no key the file is encrypted to


def _stuck_line(c: Change) -> str:
    why = (
        "its private key was never kept"
        if c.file.placeholder
        else "recipients none of your age keys matches"
    )
    fields = f" (it holds {', '.join(_value_keys(c.file.path))})" if c.file.kinds else ""
    return (
        f"{c.file.rel}: encrypted to {R.shown(c.file.recipients)} ({why}); sops cannot decrypt it "
        f"to re-key it. Re-create it{fields}: write the plaintext on stdin, "
        f"`sops encrypt --filename-override {c.file.rel} --input-type yaml --output-type yaml "
        f"/dev/stdin > {c.file.rel}.new && mv {c.file.rel}.new {c.file.rel}`"
    )


def _value_keys(path: Path) -> list[str]:
    """The data/stringData keys of a Secret manifest (sops keeps key names in clear)."""
    import yaml

    out: list[str] = []
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError):
        return out
    for doc in docs:
        for field in ("data", "stringData"):
            values = doc.get(field) if isinstance(doc, dict) else None
            if isinstance(values, dict):
                out += [f"{field}.{k}" for k in values]
    return out


def targets(root: Path, files: Iterable[R.SopsFile], rules: list[dict[str, Any]]) -> list[Change]:
    """Each file with the recipients its .sops.yaml rule names. ConfigError when a rule still
    names a placeholder (re-keying to it would lock everyone out) or no rule matches a file."""
    conf = root / ".sops.yaml"
    out: list[Change] = []
    placeholder_rules: dict[str, int] = {}  # path_regex -> how many files it covers
    for f in files:
        rule = R.rule_for(rules, f.rel)
        if rule is None:
            raise ConfigError(
                f"{f.rel}: no creation_rule of {conf} matches it; add one (path_regex)"
            )
        new = R.rule_recipients(rule)
        if new & R.PLACEHOLDERS:
            regex = str(rule.get("path_regex", "(any path)"))
            placeholder_rules[regex] = placeholder_rules.get(regex, 0) + 1
        elif not new:
            raise ConfigError(f"{conf}: the rule for {f.rel} names no age recipient")
        out.append(Change(f, new))
    if placeholder_rules:
        raise ConfigError(
            f"{conf}: the rule(s) "
            + ", ".join(f"{r} ({n} file(s))" for r, n in placeholder_rules.items())
            + " still name a placeholder recipient: put your age public key there first",
            hint="`inv secrets.init` creates a key and prints it; "
            "`age-keygen -y ~/.config/sops/age/keys.txt` shows an existing one",
        )
    return out


def plan_rekey(root: Path, wanted: Iterable[Change], mine: set[str]) -> Rekey:
    """Pure: each file with its target recipients, and the user's public keys, in; the plan
    out. A file is re-keyed when the user holds a key it is encrypted to (or it has non-age
    master keys sops may use); otherwise it is `stuck` and said so in a note."""
    conf = root / ".sops.yaml"
    plan = Plan(f"re-key SOPS files to the recipients of {conf.name}")
    changes: list[Change] = []
    stuck: list[Change] = []
    for c in wanted:
        if c.new == c.file.recipients:
            plan.note(f"{c.file.rel}: already encrypted to {R.shown(c.new)}")
        elif c.file.recipients & mine or c.file.other_keys:
            changes.append(c)
        else:
            stuck.append(c)
    for c in changes:
        plan.add(
            Cmd(
                ("sops", "--disable-version-check", "--config", str(conf), "updatekeys", "-y",
                 str(c.file.path)),
                desc=f"{c.file.rel}: {R.shown(c.file.recipients)} -> {R.shown(c.new)}",
                env=SOPS_ENV,
                cwd=str(root),
                timeout_s=60,
                destructive=True,
            )
        )  # fmt: skip
    for c in stuck:
        plan.note(f"cannot re-key {_stuck_line(c)}")
    return Rekey(plan, changes, stuck)


def stuck_error(stuck: list[Change]) -> ConfigError:
    names = ", ".join(c.file.rel for c in stuck)
    return ConfigError(
        f"secrets.rekey: {len(stuck)} file(s) cannot be re-keyed (no key of yours decrypts "
        f"them): {names}",
        hint="re-create each one as the notes above (or `inv secrets.rekey --dry-run`) show; "
        "docs/concepts/secrets.md",
    )
