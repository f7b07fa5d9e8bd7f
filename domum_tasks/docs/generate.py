"""Render every generated page, write the ones that changed, or list the stale ones.

The task reference and the environment table come from the code; the network page from the
current inventory (config/domum.yaml, or $DOMUM_INVENTORY). Paths are under the repo root
(settings.repo_root)."""

from __future__ import annotations

from pathlib import Path

from ..inventory.loader import inventory_path, load
from . import networking


def networking_page(inventory: Path | None = None) -> str:
    path = inventory or inventory_path()
    return networking.render(load(path), networking.source_name(path))


def pages(inventory: Path | None = None) -> dict[str, str]:
    """Repo-relative path -> the text the code and the inventory render."""
    from .. import ns
    from . import environment, tasks_ref

    return {
        tasks_ref.PAGE: tasks_ref.render(ns),
        environment.PAGE: environment.render(),
        networking.PAGE: networking_page(inventory),
    }


def stale(root: Path, rendered: dict[str, str]) -> list[str]:
    """The pages whose file under root is missing or differs."""
    out = []
    for rel, text in rendered.items():
        path = root / rel
        if not path.is_file() or path.read_text() != text:
            out.append(rel)
    return out


def write(root: Path, rendered: dict[str, str]) -> list[str]:
    """Write the stale pages (only those: an unchanged file keeps its mtime, so `mkdocs serve`
    does not rebuild in a loop); returns what was written."""
    changed = stale(root, rendered)
    for rel in changed:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(rendered[rel])
        tmp.replace(path)
    return changed
