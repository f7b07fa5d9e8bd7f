"""What version each external CLI reports: pure parsers of `--version` output, and the probe.

Parsers take the tool's output and return a bare version ("1.13.9", "3.11.0") or None; they are
table-tested on captured outputs of the real tools.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import OPTIONAL, TOOLS, find_tool

_SEMVER = r"v?(\d+\.\d+(?:\.\d+)?(?:-[0-9A-Za-z.]+)?)"


def _first(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1) if m else None


def parse_talosctl(out: str) -> str | None:
    # --short: "Client:\nTalos v1.13.9"; long form: "Client:\n\tTag:         v1.13.9\n\tSHA: ..."
    return _first(r"^\s*Talos\s+" + _SEMVER, out) or _first(r"^\s*Tag:\s+" + _SEMVER, out)


def parse_flux(out: str) -> str | None:
    # `flux version --client` -> "flux: v2.9.4"; `flux --version` -> "flux version 2.9.4"
    return _first(r"^flux(?::| version)\s+" + _SEMVER, out)


def parse_kubectl(out: str) -> str | None:
    # "Client Version: v1.32.4" (1.28+); older: 'Client Version: version.Info{... GitVersion:"v1.21.0"'
    return _first(r'GitVersion:"' + _SEMVER, out) or _first(r"^Client Version:\s+" + _SEMVER, out)


def parse_sops(out: str) -> str | None:
    # "sops 3.11.0" or "sops 3.9.0 (latest)"
    return _first(r"^sops\s+" + _SEMVER, out)


def parse_age(out: str) -> str | None:
    # Debian: "1.1.1"; upstream release builds: "v1.2.1"
    return _first(r"^\s*" + _SEMVER + r"\s*$", out)


def parse_restic(out: str) -> str | None:
    # "restic 0.14.0 compiled with go1.19.8 on linux/amd64"
    return _first(r"^restic\s+" + _SEMVER, out)


def parse_rsync(out: str) -> str | None:
    # "rsync  version 3.2.7  protocol version 31"
    return _first(r"^rsync\s+version\s+" + _SEMVER, out)


def parse_zstd(out: str) -> str | None:
    # "*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***"
    return _first(r"Zstandard CLI.*?\bv(\d+\.\d+\.\d+)", out)


def parse_xz(out: str) -> str | None:
    # "xz (XZ Utils) 5.4.1\nliblzma 5.4.1"
    return _first(r"^xz \(XZ Utils\)\s+" + _SEMVER, out)


# tool -> (argv after the binary, parser). Arguments are the ones the contracts allow.
PROBES: dict[str, tuple[tuple[str, ...], Callable[[str], str | None]]] = {
    "talosctl": (("version", "--client", "--short"), parse_talosctl),
    "flux": (("version", "--client"), parse_flux),
    "kubectl": (("version", "--client"), parse_kubectl),
    "sops": (("--disable-version-check", "--version"), parse_sops),  # else it asks GitHub
    "age": (("--version",), parse_age),
    "age-keygen": (("--version",), parse_age),
    "restic": (("version",), parse_restic),
    "rsync": (("--version",), parse_rsync),
    "zstd": (("--version",), parse_zstd),
    "xz": (("--version",), parse_xz),
}


def same_version(found: str | None, pinned: str | None) -> bool:
    return bool(found and pinned and found.removeprefix("v") == pinned.removeprefix("v"))


@dataclass(frozen=True)
class ToolStatus:
    tool: str
    path: Path | None
    version: str | None
    pinned: str | None
    optional: bool
    error: str = ""

    @property
    def status(self) -> str:
        if self.path is None:
            return "optional" if self.optional else "missing"
        if self.version is None:
            return "unknown"
        if self.pinned and not same_version(self.version, self.pinned):
            return "mismatch"
        return "ok"

    def row(self) -> tuple[str, str, str, str, str, str]:
        return (
            self.tool,
            "found" if self.path else "missing",
            str(self.path) if self.path else "-",
            self.version or (self.error or "-"),
            self.pinned or "-",
            self.status,
        )


def probe_version(tool: str, path: Path, timeout_s: float = 10.0) -> tuple[str | None, str]:
    """Run the tool's version command; (version, "") or (None, short reason)."""
    from ..errors import CommandFailed
    from ..run import run_cmd
    from ..secrets.store import SOPS_ENV

    args, parser = PROBES[tool]
    try:
        proc = run_cmd([str(path), *args], timeout_s=timeout_s, env=SOPS_ENV, check=False)
    except CommandFailed as exc:
        return None, exc.message.split(":")[0]
    version = parser(proc.stdout + "\n" + proc.stderr)
    return version, "" if version else f"unparsed output (exit {proc.returncode})"


def statuses(pins: dict[str, str], tools: Iterable[str] = TOOLS) -> list[ToolStatus]:
    """Find and probe every tool, in parallel (kubectl alone takes ~100 ms)."""

    def one(tool: str) -> ToolStatus:
        path = find_tool(tool)
        version, err = probe_version(tool, path) if path else (None, "")
        return ToolStatus(tool, path, version, pins.get(tool), tool in OPTIONAL, err)

    names = list(tools)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, names))
