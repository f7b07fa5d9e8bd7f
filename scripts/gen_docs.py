#!/usr/bin/env python3
"""Write the generated docs pages (or, with --check, exit 1 when one is stale): a shim for
`python -m domum_tasks.docs`, which the mkdocs hook runs too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's domum_tasks

from domum_tasks.docs.__main__ import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
