"""`python -m domum_tasks.docs [--check]`: write the generated pages, or (--check) list the stale
ones and exit 1. scripts/gen_docs.py and the mkdocs hook (scripts/mkdocs_hooks.py) run this."""

from __future__ import annotations

import argparse
import sys

from ..errors import DomumError
from ..inventory.loader import repo_root
from .generate import pages, stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domum_tasks.docs", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a page is out of date"
    )
    args = parser.parse_args(argv)
    root = repo_root()
    try:
        rendered = pages()
    except DomumError as exc:  # an invalid inventory: its one clean message, exit 2
        print(f"domum: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.check:
        out = stale(root, rendered)
        for rel in out:
            print(f"{rel}: out of date; run `python -m domum_tasks.docs`", file=sys.stderr)
        return 1 if out else 0
    for rel in write(root, rendered):
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
