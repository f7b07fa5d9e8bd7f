"""`inv check` for docs/networking.md: the page must be what the current inventory renders, as
the committed Talos patches must (talos/genconfig/checks.py).

Stale is a warning, not an error: the page is documentation, nothing deploys from it, and CI
already fails on a stale page (tests/test_docs_generated.py, `mkdocs build --strict`). A repo
root with no docs/networking.md (a user's own checkout without the docs) is one ok row: the page
is optional, and `python -m domum_tasks.docs` creates it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..findings import CheckFinding
from ..inventory.loader import Loaded, repo_root
from . import networking

NAME = "docs"


def check_networking(loaded: Loaded) -> Iterable[CheckFinding]:
    path = repo_root() / networking.PAGE
    if not path.is_file():
        yield CheckFinding(
            NAME,
            "ok",
            networking.PAGE,
            "no such page (optional): `python -m domum_tasks.docs` writes it",
        )
        return
    source = networking.source_name(loaded.path)
    if path.read_text() == networking.render(loaded.inventory, source):
        yield CheckFinding(NAME, "ok", networking.PAGE, f"matches {source}")
        return
    yield CheckFinding(
        NAME,
        "warning",
        networking.PAGE,
        f"out of date for {source}; `python -m domum_tasks.docs` rewrites it",
    )
