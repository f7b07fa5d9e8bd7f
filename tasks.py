"""Entry point for `inv`: it only composes the namespaces that live in domum_tasks."""

import sys

# invoke turns off .pyc writing before it loads tasks.py (so no __pycache__ appears beside a
# project's tasks.py); that also kept Domum's own package from ever caching its bytecode, and
# every run recompiled each module it imported. tasks.py itself is loaded by now, so writing
# stays on for the rest of the run: the modules a task imports lazily (most of a
# `backup.snapshot` run's) are cached too, not recompiled on every run.
sys.dont_write_bytecode = False
from domum_tasks import ns  # noqa: E402

__all__ = ["ns"]
