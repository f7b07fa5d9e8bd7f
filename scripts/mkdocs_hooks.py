"""mkdocs hook (mkdocs.yml `hooks:`): regenerate the generated pages before every build.

A page the hook had to rewrite was stale in the checkout: that is a warning, so
`mkdocs build --strict` (CI) fails until the regenerated page is committed, while
`mkdocs serve` just shows the fresh one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from domum_tasks.docs.generate import pages, write

log = logging.getLogger("mkdocs.hooks.domum")


def on_pre_build(config: Any) -> None:
    root = Path(config["docs_dir"]).parent  # the pages' paths start with docs/
    for rel in write(root, pages()):
        log.warning("%s was out of date and is regenerated; commit it", rel)
