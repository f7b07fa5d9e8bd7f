"""Read-only probes of the user's age key material: the identities sops would use, and their
public keys (recipients). Key material is only ever read into memory and handed to
`age-keygen -y` on stdin: never in an argv, never printed.

Where the identities come from is where sops 3.11 looks for native age keys (getsops/sops,
age/keysource.go, MasterKey.loadIdentities): $SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE and the
default keys file, all of them. SSH keys and $SOPS_AGE_KEY_CMD are not used here: Flux's
kustomize-controller takes native age identities only (a Secret key ending in `.agekey`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..errors import ConfigError

IDENTITY_PREFIX = "AGE-SECRET-KEY-"  # also the post-quantum AGE-SECRET-KEY-PQ-1...
KEYGEN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Identity:
    secret: str  # one AGE-SECRET-KEY-... line
    public: str  # its age1... recipient
    source: str  # where it was read (an env var name or a file path), for messages


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith(IDENTITY_PREFIX)]


def _sources() -> list[tuple[str, str]]:
    """(source, text) for every place sops reads native age identities from."""
    from .store import default_age_key_file

    found: list[tuple[str, str]] = []
    if key := settings.get("SOPS_AGE_KEY"):
        found.append(("SOPS_AGE_KEY", key))
    paths = []
    if key_file := settings.get("SOPS_AGE_KEY_FILE"):
        paths.append(Path(key_file).expanduser())
    paths.append(default_age_key_file())
    for path in dict.fromkeys(paths):  # the same file once
        if path.is_file():
            try:
                found.append((str(path), path.read_text()))
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read the age key ({exc.strerror})") from None
    return found


def public_key(secret: str) -> str:
    """`age-keygen -y` with the identity on stdin: its recipient."""
    from ..errors import CommandFailed
    from ..run import run_cmd

    try:
        proc = run_cmd(
            ["age-keygen", "-y"],
            input_text=secret + "\n",
            timeout_s=KEYGEN_TIMEOUT_S,
            secrets=[secret],
            check=False,
        )
    except CommandFailed as exc:
        raise CommandFailed(f"age-keygen -y failed: {exc.message}") from None
    out = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or len(out) != 1 or not out[0].startswith("age1"):
        raise ConfigError("an age identity of yours is not valid (age-keygen -y rejected it)")
    return out[0]


def identities() -> list[Identity]:
    """Every native age identity the user holds, with its public key (deduplicated)."""
    seen: dict[str, Identity] = {}
    for source, text in _sources():
        for secret in _lines(text):
            if secret not in seen:
                seen[secret] = Identity(secret, public_key(secret), source)
    return list(seen.values())
