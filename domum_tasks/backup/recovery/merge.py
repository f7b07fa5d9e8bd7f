"""A restore merges into `--to` (issue 16 #6): it never deletes what the snapshot does not hold.

restic restores into a temporary directory inside `--to` (same filesystem, so every move is a
rename), then each entry moves into place: a file or symlink replaces only the file at its
own path (os.replace, atomic); a directory `--to` does not have moves whole; one it has is
merged into, entry by entry. Unrelated files, in the top level or deep inside a directory the
snapshot also has, stay. restic 0.18's own `restore --overwrite` does the same per file but,
restoring in place, leaves a half-written mix when killed; `--delete` (never used here) would
remove unrelated files. A path where one side has a directory and the other not is refused
before anything moves: replacing it would delete what the snapshot does not hold.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ...errors import Refused
from ...plan import Plan


def _is_real_dir(p: Path) -> bool:
    return p.is_dir() and not p.is_symlink()


def _exists(p: Path) -> bool:
    return p.exists() or p.is_symlink()


def preview(entries: Iterable[tuple[str, str]], to: Path) -> tuple[list[str], list[str], list[str]]:
    """(written new, replaced, conflicts) for the snapshot's (relative path, type) entries."""
    new: list[str] = []
    replaced: list[str] = []
    conflicts: list[str] = []
    for rel, kind in sorted(entries):
        dest = to / rel
        if kind == "dir":
            if _exists(dest) and not _is_real_dir(dest):
                conflicts.append(f"{rel} (a directory in the backup, not one in --to)")
        elif _is_real_dir(dest):
            conflicts.append(f"{rel} (a directory in --to, not one in the backup)")
        elif _exists(dest):
            replaced.append(rel)
        else:
            new.append(rel)
    return new, replaced, conflicts


def _walk(root: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root)
        for name in dirnames:
            p = Path(dirpath) / name
            out.append((str(base / name), "symlink" if p.is_symlink() else "dir"))
        out += [(str(base / name), "file") for name in filenames]
    return out


def merge(src: Path, to: Path) -> tuple[list[str], list[str]]:
    """Move `src`'s tree into `to` as the module says; (written new, replaced) file paths."""
    _, _, conflicts = preview(_walk(src), to)
    if conflicts:
        more = f" (+{len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
        raise Refused(
            f"--to {to}: the backup and the directory disagree on {', '.join(conflicts[:5])}"
            f"{more}; nothing was moved",
            hint="move those paths away, or restore into an empty directory",
        )
    new: list[str] = []
    replaced: list[str] = []
    _merge(src, to, Path(), new, replaced)
    return new, replaced


def _merge(src: Path, to: Path, rel: Path, new: list[str], replaced: list[str]) -> None:
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        here, dest = Path(entry.path), to / entry.name
        if entry.is_dir(follow_symlinks=False):
            if _is_real_dir(dest):
                _merge(here, dest, rel / entry.name, new, replaced)
                continue
            new += [str(rel / entry.name / r) for r, k in _walk(here) if k != "dir"]
            os.rename(here, dest)  # absent in --to (conflicts were refused above)
        else:
            (replaced if _exists(dest) else new).append(str(rel / entry.name))
            os.replace(here, dest)


def note_preview(plan: Plan, entries: list[tuple[str, str]], to: Path, show: int = 20) -> None:
    """The dry run (and the confirmation) list what a merge into a non-empty --to writes and
    replaces; a directory/file disagreement is refused before anything runs."""
    new, replaced, conflicts = preview(entries, to)
    if conflicts:
        raise Refused(
            f"--to {to}: the backup and the directory disagree on {', '.join(conflicts[:5])}",
            hint="move those paths away, or restore into an empty directory",
        )
    for what, names in (("written new", new), ("REPLACED", replaced)):
        more = f" (+{len(names) - show} more)" if len(names) > show else ""
        plan.note(f"{len(names)} file(s) {what} in {to}: {', '.join(names[:show]) or '-'}{more}")
    plan.note(f"files in {to} the backup does not hold are kept")
