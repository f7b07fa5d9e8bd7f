"""Entry point for `inv`: it only composes the namespaces that live in domum_tasks."""

import sys

# invoke turns off .pyc writing before it loads tasks.py (so no __pycache__ appears beside a
# project's tasks.py); that also kept Domum's own package from ever caching its bytecode, and
# `inv --list` recompiled every module on every run. The package's cache is Python's normal one.
_no_pyc, sys.dont_write_bytecode = sys.dont_write_bytecode, False
try:
    from domum_tasks import ns
finally:
    sys.dont_write_bytecode = _no_pyc

__all__ = ["ns"]
