"""The one place paths and environment variables are resolved. No other module reads os.environ.

Every variable Domum reads (docs/reference/environment.md is generated from this table):

| variable | default | purpose |
|---|---|---|
| DOMUM_REPO_ROOT | the checkout this package is in | where `config/`, `cluster/`, `clusterconfig/` live; commands run from here |
| DOMUM_INVENTORY | `<repo>/config/domum.yaml` | the inventory file |
| DOMUM_SECRETS_FILE | `<repo>/config/secrets.sops.yaml` | the SOPS-encrypted secrets file |
| DOMUM_<KEY> | (unset) | a secret's value, winning over the file (`proxmox.pve1.token_secret` -> DOMUM_PROXMOX_PVE1_TOKEN_SECRET) |
| DOMUM_CACHE_DIR | the user cache dir (`~/.cache/domum`) | downloaded images (`images/`) and schemas (`schemas/`) |
| DOMUM_BIN_DIR | `<repo>/.bin` | where `tools.install` puts talosctl and flux, searched before PATH |
| DOMUM_TALOS_SCHEMA_DIR | `<cache>/schemas/talos` | a directory holding `talos-config.<minor>.schema.json` |
| DOMUM_CRD_SCHEMAS | `<cache>/schemas/crd` | CRD schema directories for flux.validate (os.pathsep-separated) |
| DOMUM_CHARTS | `<cache>/charts` | Helm chart directories (`<chart>/<version>/values.yaml`...) for flux.validate (os.pathsep-separated) |
| DOMUM_TOOLS_BASE_URL | `https://github.com` | a mirror of the talosctl/flux release downloads |
| DOMUM_<TOOL>_BASE_URL | (unset) | one tool's release directory on a mirror (DOMUM_TALOSCTL_BASE_URL) |
| DOMUM_SCHEMAS_BASE_URL | raw.githubusercontent.com | a mirror of the schema downloads |
| DOMUM_DEBUG | (unset) | set: an internal error shows its traceback |
| CI | (unset) | `true`: flux.validate treats a kind without a schema, or a chart it cannot read, as an error |
| SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, ... | sops's own | the age key sops decrypts with |
| XDG_CONFIG_HOME | `~/.config` | where sops looks for `sops/age/keys.txt` |
| XDG_STATE_HOME | `~/.local/state` | `domum up`'s state file: `domum/up.json` (finished phases) |
| RESTIC_CACHE_DIR | `<state_dir>/cache/restic` | restic's own cache directory |

Values are read when asked (cheap), so a test's environment and a cron job's are both seen as
they are; nothing is cached at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PACKAGE_CHECKOUT = Path(__file__).resolve().parent.parent


def environ() -> Mapping[str, str]:
    """The process environment, for what is passed on to child processes and secret overrides."""
    return os.environ


def get(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def repo_root() -> Path:
    """Where relative inventory paths (clusterconfig/talosconfig, ...) live and commands run."""
    env = _path("DOMUM_REPO_ROOT")
    return env.resolve() if env else PACKAGE_CHECKOUT


def inventory_path() -> Path:
    return _path("DOMUM_INVENTORY") or repo_root() / "config" / "domum.yaml"


def secrets_file() -> Path:
    return _path("DOMUM_SECRETS_FILE") or repo_root() / "config" / "secrets.sops.yaml"


def cache_dir() -> Path:
    env = _path("DOMUM_CACHE_DIR")
    if env:
        return env
    import platformdirs  # only when no cache dir is given

    return Path(platformdirs.user_cache_dir("domum"))


def bin_dir() -> Path:
    return _path("DOMUM_BIN_DIR") or repo_root() / ".bin"


def talos_schema_dir() -> Path:
    return _path("DOMUM_TALOS_SCHEMA_DIR") or cache_dir() / "schemas" / "talos"


def crd_schema_dirs() -> list[Path]:
    """Extra CRD schema directories ($DOMUM_CRD_SCHEMAS); the cache is the caller's fallback."""
    raw = os.environ.get("DOMUM_CRD_SCHEMAS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def chart_dirs() -> list[Path]:
    """Extra Helm chart directories ($DOMUM_CHARTS); the cache is the caller's fallback."""
    raw = os.environ.get("DOMUM_CHARTS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def tools_base_url(tool: str, default: str) -> str:
    """A tool's release directory: DOMUM_<TOOL>_BASE_URL, else DOMUM_TOOLS_BASE_URL + default."""
    per_tool = os.environ.get(f"DOMUM_{tool.upper()}_BASE_URL")
    if per_tool:
        return per_tool.rstrip("/")
    return f"{os.environ.get('DOMUM_TOOLS_BASE_URL', 'https://github.com').rstrip('/')}/{default}"


def schemas_base_url(default: str) -> str:
    return os.environ.get("DOMUM_SCHEMAS_BASE_URL", default).rstrip("/")


def debug() -> bool:
    return bool(os.environ.get("DOMUM_DEBUG"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true")


def config_home() -> Path:
    return _path("XDG_CONFIG_HOME") or Path.home() / ".config"


def state_home() -> Path:
    return _path("XDG_STATE_HOME") or Path.home() / ".local" / "state"


def up_state_file() -> Path:
    """Which phases `domum up` finished, with the inventory's hash (domum_tasks/up/state.py)."""
    return state_home() / "domum" / "up.json"
