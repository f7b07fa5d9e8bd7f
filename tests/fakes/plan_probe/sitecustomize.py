"""Plan probe for Python subprocesses of a test session (`inv ... --dry-run --json`, tasks run for real).

tests/fixtures/contract.py puts this directory first on PYTHONPATH and sets DOMUM_CONTRACT_PLAN_LOG,
so every Python child process imports this file at start-up. It does nothing else until
`domum_tasks.plan` is imported; then it wraps `Plan.__init__`, and at exit appends one JSON line per
talosctl/flux `Cmd` and per `PveCall` of every plan built in the process:
    {"origin": "<PYTEST_CURRENT_TEST>", "kind": "cmd", "argv": [...]}
    {"origin": "...", "kind": "pve", "method": ..., "path": ..., "params": {...}}
The session's contract check reads that file. Inside pytest itself the plugin disables it.
Standard library only; it never raises into the host program.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
from typing import Any

_PLANS: list[Any] = []
_ENABLED = bool(os.environ.get("DOMUM_CONTRACT_PLAN_LOG"))
_domum_probe = True


def disable() -> None:
    global _ENABLED
    _ENABLED = False


def _flatten(step: dict[str, Any]) -> list[dict[str, Any]]:
    nested = [*step.get("steps", []), *(s for lane in step.get("lanes", []) for s in lane)]
    if nested:  # a job's steps, a fan-out's lanes
        return [found for inner in nested for found in _flatten(inner)]
    if step.get("kind") == "wait" and isinstance(step.get("probe"), dict):
        return _flatten(step["probe"])
    if step.get("kind") == "cmd" and os.path.basename(str(step["argv"][0])) in ("talosctl", "flux"):
        return [{"kind": "cmd", "argv": [str(a) for a in step["argv"]]}]
    if step.get("kind") == "pve":
        return [{k: step.get(k) for k in ("kind", "method", "path", "params")}]
    return []


def _dump() -> None:
    path = os.environ.get("DOMUM_CONTRACT_PLAN_LOG")
    if not (_ENABLED and path and _PLANS):
        return
    origin = os.environ.get("PYTEST_CURRENT_TEST", "<no test>").rsplit(" (", 1)[0]
    lines = []
    for plan in _PLANS:
        for step in [*plan.steps, *getattr(plan, "finally_steps", [])]:
            try:
                for rec in _flatten(step.to_dict()):
                    lines.append(
                        json.dumps({"origin": origin, "plan": plan.title, **rec}, default=str)
                    )
            except Exception:
                continue
    if lines:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


def _patch(module: Any) -> None:
    original = module.Plan.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _PLANS.append(self)

    module.Plan.__init__ = __init__
    atexit.register(_dump)


class _Finder:
    """Meta path finder that patches domum_tasks.plan right after it is executed."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "domum_tasks.plan":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            exec_module = loader.exec_module

            def exec_and_patch(module: Any) -> None:
                exec_module(module)
                with contextlib.suppress(Exception):  # never break the program under test
                    _patch(module)

            loader.exec_module = exec_and_patch
        return spec


if _ENABLED:
    sys.meta_path.insert(0, _Finder())  # type: ignore[arg-type]
