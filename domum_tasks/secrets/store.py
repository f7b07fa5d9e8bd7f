"""Secrets: SOPS + age, with the environment taking precedence. Values are never printed.

Where a secret comes from, in order:
  1. the environment variable named by `env_name(key)`:
         DOMUM_ + the dotted key, upper-cased, with every run of non-alphanumerics as one "_"
         proxmox.pve1.token_secret  <-  DOMUM_PROXMOX_PVE1_TOKEN_SECRET
         nas.restic-password        <-  DOMUM_NAS_RESTIC_PASSWORD
  2. `config/secrets.sops.yaml` ($DOMUM_SECRETS_FILE overrides; settings.secrets_file()),
     decrypted by sops in memory (`sops decrypt --output-type json`, read from stdout, through
     run.run_cmd) only when a key is not in the env.

The file's nested mappings become dotted keys. `config/secrets.example.yaml` names the keys Domum
knows, so `inv secrets.keys` can say which are missing. Key material is what sops itself reads:
$SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE or ~/.config/sops/age/keys.txt.

Values never reach logs, plans or exceptions: `Secrets.values()` feeds Plan.secrets / the
Executor's masking, `repr(Secrets)` shows key names only, and sops errors are masked.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import CommandFailed, ConfigError
from ..plan import mask
from ..tools import require_tool

# The keys Domum knows ship with the package (not the user's repo root).
EXAMPLE_PATH = settings.PACKAGE_CHECKOUT / "config" / "secrets.example.yaml"
ENV_PREFIX = "DOMUM_"
SOPS_ENV = {"SOPS_DISABLE_VERSION_CHECK": "1"}
# sops otherwise asks the GitHub API for its latest version (offline users and CI cannot reach
# it); a global flag, so it goes before the subcommand.
SOPS_GLOBAL_FLAGS = ("--disable-version-check",)
SOPS_TIMEOUT_S = 60.0
KEY_ENV_VARS = (
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
)


def secrets_path() -> Path:
    return settings.secrets_file()


def env_name(key: str) -> str:
    """The environment variable that overrides dotted secret `key`."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").upper()


def default_age_key_file() -> Path:
    """Where sops (and `inv secrets.init`) look for the age key when no env var says otherwise."""
    return settings.config_home() / "sops" / "age" / "keys.txt"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings -> {"a.b.c": "value"}; scalars as strings, lists as JSON."""
    out: dict[str, str] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = json.dumps(v)
        elif isinstance(v, bool):
            out[key] = "true" if v else "false"
        elif v is not None:
            out[key] = str(v)
    return out


def check_key_material() -> None:
    """Fail early, naming where sops looks, when no age key can be present."""
    key_file = settings.get("SOPS_AGE_KEY_FILE")
    if key_file and not Path(key_file).expanduser().is_file():
        raise ConfigError(
            f"SOPS_AGE_KEY_FILE={key_file}: no such file",
            hint="point it at your age key, or run `inv secrets.init` to create one",
        )
    if any(settings.get(v) for v in KEY_ENV_VARS) or default_age_key_file().is_file():
        return
    raise ConfigError(
        f"no age key to decrypt secrets: set SOPS_AGE_KEY_FILE (or SOPS_AGE_KEY), "
        f"or put the key in {default_age_key_file()}",
        hint="`inv secrets.init` creates a key there; or set the DOMUM_* env vars instead",
    )


def sops_config_for(path: Path) -> Path | None:
    """The .sops.yaml governing `path`: the nearest one in its directory or above."""
    for parent in path.resolve().parents:
        candidate = parent / ".sops.yaml"
        if candidate.is_file():
            return candidate
    return None


def sops_argv(*args: str) -> list[str]:
    """The argv of one sops call: the binary, its global flags, then `args`."""
    return [str(require_tool("sops")), *SOPS_GLOBAL_FLAGS, *args]


def _sops(
    args: list[str],
    *,
    what: str,
    secrets: list[str] | None = None,
    input_bytes: bytes | None = None,
    cwd: Path | None = None,
) -> bytes:
    """Run sops; return stdout. On failure: one masked line plus the masked stderr tail."""
    from ..run import run_cmd

    hidden = list(secrets or [])
    what = mask(what, hidden)  # even a path may carry a value
    try:
        proc = run_cmd(
            sops_argv(*args),
            timeout_s=SOPS_TIMEOUT_S,
            env=SOPS_ENV,
            cwd=str(cwd or Path.cwd()),
            secrets=hidden,
            check=False,
            input_text=input_bytes.decode() if input_bytes is not None else None,
        )
    except CommandFailed as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            raise
        raise CommandFailed(f"sops timed out after {SOPS_TIMEOUT_S:g}s while {what}") from None
    if proc.returncode == 0:
        return proc.stdout.encode()
    # stdout may hold partial plaintext: never shown. stderr is masked with every known value.
    err = mask(proc.stderr, hidden).strip()
    tail = "\n".join(err.splitlines()[-8:])
    if "no master key was able to decrypt" in err or "failed to get the data key" in err:
        raise ConfigError(
            f"sops could not decrypt {what}: none of your age keys is a recipient of the file",
            hint="check SOPS_AGE_KEY_FILE / ~/.config/sops/age/keys.txt holds the right key",
        )
    raise CommandFailed(f"sops failed (exit {proc.returncode}) while {what}", stderr_tail=tail)


def decrypt_bytes(
    path: Path, *, output_type: str | None = None, secrets: list[str] | None = None
) -> bytes:
    """Decrypt a sops file into memory (never to disk)."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such sops file")
    check_key_material()
    args = ["decrypt"]
    if output_type:
        args += ["--output-type", output_type]
    return _sops([*args, str(path)], what=f"decrypting {path}", secrets=secrets)


def decrypt_file(path: Path, *, secrets: list[str] | None = None) -> dict[str, Any]:
    """Decrypt a sops YAML/JSON file into a dict, in memory."""
    raw = decrypt_bytes(path, output_type="json", secrets=secrets)
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{path}: sops output is not a JSON document") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to secrets")
    return data


def _private_tmp_dir() -> str | None:
    """tmpfs when there is one (/dev/shm), so plaintext need not touch a disk at all."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def plain_name(path: Path) -> str:
    """secrets.sops.yaml -> secrets.yaml (the name tools like talosctl see)."""
    return path.name.replace(".sops.", ".").replace(".enc.", ".")


@contextmanager
def decrypted_tempfile(
    path: str | os.PathLike[str],
    *,
    output_type: str | None = None,
    secrets: list[str] | None = None,
) -> Iterator[Path]:
    """Decrypt `path` to a 0600 file in a 0700 temp dir that lives as long as the `with` block.

    For tools that only take a file (`talosctl gen config --with-secrets`). The file is removed
    on exit, also on error or Ctrl-C.
    """
    src = Path(path)
    data = decrypt_bytes(src, output_type=output_type, secrets=secrets)
    tmpdir = tempfile.mkdtemp(prefix="domum-secret-", dir=_private_tmp_dir())
    target = Path(tmpdir) / plain_name(src)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield target
    finally:
        target.unlink(missing_ok=True)
        os.rmdir(tmpdir)


PLACEHOLDER_RECIPIENT = "REPLACE-WITH-YOUR-AGE-PUBLIC-KEY"


def unencrypted_leaves(doc: Any, path: str = "") -> list[str]:
    """Dotted paths of values sops left in plaintext (sops metadata itself excluded)."""
    if isinstance(doc, Mapping):
        return [
            leaf
            for k, v in doc.items()
            if not (path == "" and k == "sops")
            for leaf in unencrypted_leaves(v, f"{path}{k}.")
        ]
    if isinstance(doc, list):
        return [leaf for i, v in enumerate(doc) for leaf in unencrypted_leaves(v, f"{path}{i}.")]
    if doc is None or (isinstance(doc, str) and (doc.startswith("ENC[") or doc == "")):
        return []
    return [path.rstrip(".")]


def encryption_config(target: Path, config: Path | None = None) -> Path:
    """The `.sops.yaml` that would encrypt `target`; ConfigError if none, or if it still names
    the placeholder recipient (dry runs call this too, so they fail where the real run would)."""
    conf = config or sops_config_for(target)
    if conf is None:
        raise ConfigError(
            f"no .sops.yaml found above {target}", hint="see docs/concepts/secrets.md"
        )
    if PLACEHOLDER_RECIPIENT in conf.read_text():
        raise ConfigError(
            f"{conf}: still has the placeholder age recipient; put your public key there",
            hint="`inv secrets.init` creates a key and prints its public half",
        )
    return conf


def encrypt_bytes(
    data: bytes,
    dest: str | os.PathLike[str],
    *,
    config: Path | None = None,
    require_all_encrypted: bool = True,
) -> None:
    """Encrypt in-memory plaintext to `dest` with the `.sops.yaml` creation rule matching dest.

    Plaintext goes to sops on stdin; only ciphertext is written (atomically, 0600) to disk. With
    require_all_encrypted (the default), a YAML/JSON result where sops left any value in clear
    (an `encrypted_regex` rule meant for Kubernetes Secrets matching the wrong file) is refused
    and nothing is written; pass False for Secret manifests, whose metadata stays readable.
    """
    from ..run import write_atomic

    target = Path(dest).resolve()
    conf = encryption_config(target, config)
    out = _sops(
        ["--config", str(conf), "encrypt", "--filename-override", str(target)],
        what=f"encrypting {dest}",
        input_bytes=data,
    )
    if require_all_encrypted and target.suffix in (".yaml", ".yml", ".json"):
        import yaml

        clear = unencrypted_leaves(yaml.safe_load(out))
        if clear:
            raise ConfigError(
                f"refusing to write {dest}: the {conf.name} rule for it leaves "
                f"{', '.join(clear[:5])} unencrypted",
                hint="give this path a creation rule without encrypted_regex",
            )
    write_atomic(target, out, 0o600)


def encrypt_in_place(
    path: str | os.PathLike[str], *, config: Path | None = None, require_all_encrypted: bool = True
) -> None:
    """Encrypt a plaintext file in place with the creation rules of the repo's `.sops.yaml`."""
    target = Path(path).resolve()
    if not target.is_file():
        raise ConfigError(f"{path}: no such file to encrypt")
    encrypt_bytes(
        target.read_bytes(), target, config=config, require_all_encrypted=require_all_encrypted
    )


def file_key_names(path: Path) -> list[str]:
    """Key names of a sops YAML/JSON file WITHOUT decrypting: sops keeps keys in clear."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it as YAML ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        return []
    return sorted(flatten({k: v for k, v in doc.items() if k != "sops"}))


def known_keys(example: Path | None = None) -> list[str]:
    """The keys Domum expects, read from config/secrets.example.yaml (plaintext placeholders)."""
    import yaml

    src = example or EXAMPLE_PATH
    if not src.is_file():
        return []
    data = yaml.safe_load(src.read_text()) or {}
    return sorted(flatten(data)) if isinstance(data, dict) else []


# A value still as config/secrets.example.yaml ships it is not a secret anyone chose.
_PLACEHOLDER = re.compile(r"change[-_ ]?me|^0{8}-0{4}-0{4}-0{4}-0{12}$", re.IGNORECASE)


def is_placeholder(value: str) -> bool:
    """`change-me`, `ghp_change-me`, the all-zero token UUID: the example file's values."""
    return bool(_PLACEHOLDER.search(value.strip()))


class Secrets:
    """Secret values by dotted key; env first, then the sops file (decrypted once, lazily).

    `repr()` lists key names, never values. `values()` returns every value handed out or loaded,
    for masking (Plan.secrets, Executor(secrets=...)).
    """

    def __init__(self, path: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.path = path or secrets_path()
        self._env = settings.environ() if env is None else env
        self._file: dict[str, str] | None = None
        self._asked: set[str] = set()

    def _from_file(self) -> dict[str, str]:
        if self._file is None:
            self._file = (
                flatten(decrypt_file(self.path, secrets=self._env_values()))
                if self.path.is_file()
                else {}
            )
        return self._file

    def _env_values(self) -> list[str]:
        # Only env vars that name a secret key: DOMUM_INVENTORY and friends are not secrets.
        keys = {*known_keys(), *self._asked, *(self._file or {})}
        return [v for k in keys if (v := self._env.get(env_name(k)))]

    def source(self, key: str) -> str:
        """ "env", "file" or "missing" (decrypts the file if the env does not have the key)."""
        if self._env.get(env_name(key)):
            return "env"
        return "file" if key in self._from_file() else "missing"

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value, or `default` when unset. A placeholder copied from secrets.example.yaml
        (`change-me`) counts as unset: a repository must not be created with it as password."""
        self._asked.add(key)
        value = self._env.get(env_name(key))
        if not value:
            value = self._from_file().get(key)
        if value is None or is_placeholder(value):
            return default
        return value

    def unset_reason(self, key: str) -> str:
        """Why get(key) gave nothing, for the error message."""
        value = self._env.get(env_name(key)) or self._from_file().get(key)
        if value is not None and is_placeholder(value):
            where = env_name(key) if self._env.get(env_name(key)) else str(self.path)
            return f"still has the placeholder value from secrets.example.yaml (in {where})"
        return "is not set"

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise ConfigError(
                f"secret {key!r} {self.unset_reason(key)}: export {env_name(key)} or set it "
                f"in {self.path}",
                hint="`inv secrets.edit` opens the encrypted file; `inv secrets.keys` lists keys",
            )
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def file_keys(self) -> list[str]:
        return sorted(self._from_file())

    def values(self) -> list[str]:
        """Every secret value known so far (file and DOMUM_* env), for masking."""
        file_values = list(self._file.values()) if self._file else []
        return [*self._env_values(), *file_values]

    def __repr__(self) -> str:
        keys = ", ".join(sorted(self._file)) if self._file is not None else "not decrypted yet"
        return f"<Secrets {self.path.name}: {keys}>"

    __str__ = __repr__


def load(path: Path | None = None) -> Secrets:
    """The Secrets of this homelab (nothing is decrypted until a key outside the env is read)."""
    return Secrets(path)
