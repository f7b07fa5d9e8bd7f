"""config/charts.lock: the digest each chart had when Domum first fetched it.

Trust on first use over TLS, then pinned. A chart with no maintainer-verified pin in
tools/chart_pins.py (and no `ref.digest` in the tree) is verified, the first time, against the
digest its source publishes: the `digest` of its entry in the chart repository's index.yaml, or
the sha256 of the OCI manifest fetched by tag (the chart layer checked against the manifest).
Both come over HTTPS, so that first fetch trusts the source and its TLS certificate as Flux's
source-controller does (it verifies no provenance either unless told to). The digest obtained
is recorded here, in a file committed with the repository; every later fetch (another machine,
CI, `--force`) must match it, and a mismatch is refused (exit 1, naming the chart, the recorded
and the fetched digest). A pin in chart_pins.py wins over the lock.

Format (YAML, sorted, so diffs stay small):

    traefik/41.3.0:
      sha256: <64 hex: the .tgz for a chart repository, the manifest for OCI>
      source: https://traefik.github.io/charts
      fetched_at: '2026-12-03T10:00:00+00:00'

An entry whose `source` is not where the tree now takes the chart from is not used (the chart
moved): that chart is a first use again, and its entry is replaced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import ConfigError

LOCK_STEP = "tools.chart-lock"
HEADER = (
    "# Digests of the Helm charts `inv tools.install` fetched for flux.validate, recorded on\n"
    "# first use (see domum_tasks/tools/chartlock.py). Commit this file: later fetches must\n"
    "# match it. Delete an entry only if you have checked why its chart changed.\n"
)
_HEX = re.compile(r"[0-9a-f]{64}")


def lock_path() -> Path:
    return settings.repo_root() / "config" / "charts.lock"


def shown(path: Path) -> str:
    """The lock's path as a person reads it: relative to the repository when inside it."""
    try:
        return path.relative_to(settings.repo_root()).as_posix()
    except ValueError:
        return str(path)


def read_lock(path: Path) -> dict[str, dict[str, str]]:
    """The entries of the lock; none when it does not exist. It is a pin: a lock that cannot
    be read is bad input (exit 2), never silently ignored."""
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{shown(path)}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{shown(path)}{where}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{shown(path)}: must be a mapping of '<chart>/<version>' to entries")
    return {str(k): _entry(path, str(k), v) for k, v in data.items()}


def _entry(path: Path, key: str, value: Any) -> dict[str, str]:
    if not re.fullmatch(r"[^/\s]+/[^/\s]+", key):
        raise ConfigError(f"{shown(path)}: key {key!r} is not '<chart>/<version>'")
    if not isinstance(value, dict):
        raise ConfigError(f"{shown(path)}: {key}: must be a mapping (sha256, source, fetched_at)")
    sha = str(value.get("sha256", ""))
    if not _HEX.fullmatch(sha):
        raise ConfigError(f"{shown(path)}: {key}.sha256: {sha!r} is not 64 lowercase hex digits")
    source = value.get("source")
    if not isinstance(source, str) or not source:
        raise ConfigError(f"{shown(path)}: {key}.source: must be the URL the chart came from")
    return {"sha256": sha, "source": source, "fetched_at": str(value.get("fetched_at", ""))}


def render_lock(entries: Mapping[str, Mapping[str, str]]) -> str:
    import yaml

    body = {k: dict(sorted(v.items())) for k, v in sorted(entries.items())}
    return HEADER + (yaml.safe_dump(body, sort_keys=True) if body else "{}\n")


def write_lock(args: Mapping[str, Any]) -> dict[str, Any]:
    """The lock step: merge the digests this run obtained on first use (each chart step's
    result, named by "<chart>/<version>") into the lock, keeping every other entry; written
    atomically, and not at all when nothing changed."""
    from ..run import write_atomic

    path = Path(str(args["path"]))
    lock = read_lock(path)
    before = render_lock(lock) if path.exists() else None
    recorded = []
    for key, result in args.items():
        if key == "path":
            continue
        got = result.value
        lock[key] = {
            "sha256": got["sha256"],
            "source": got["source"],
            "fetched_at": got["fetched_at"],
        }
        recorded.append(key)
    after = render_lock(lock)
    if after != before:
        write_atomic(path, after.encode())
    return {"lock": str(path), "recorded": recorded}
