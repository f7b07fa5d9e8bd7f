"""What a step came to: the executor's StepResult, and Local args that name earlier results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..plan import Local, ResultOf, Step


@dataclass
class StepResult:
    step: Step
    ok: bool = True
    stdout: str = ""
    stderr: str = ""
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """What crosses a job's process boundary (JSON): the value only if JSON can carry it."""
        import json

        def plain(obj: Any) -> Any:  # a fan-out's lanes inside a job: results as dicts
            if isinstance(obj, StepResult):
                return obj.to_dict()
            raise TypeError(type(obj).__name__)

        try:
            value = json.loads(json.dumps(self.value, default=plain))
        except (TypeError, ValueError):
            value = None
        return {"ok": self.ok, "stdout": self.stdout, "stderr": self.stderr, "value": value}


def with_results(step: Step, done: Sequence[StepResult]) -> Step:
    """A Local step whose args name earlier results (plan.ResultOf) gets those results; the
    step keeps its identity for everything else (the recorded step is the planned one)."""
    if not isinstance(step, Local) or not any(isinstance(v, ResultOf) for v in step.args.values()):
        return step
    args = {k: done[v.index] if isinstance(v, ResultOf) else v for k, v in step.args.items()}
    return ResolvedLocal(step.action, args, step.desc, step.destructive, planned=step)


@dataclass(frozen=True)
class ResolvedLocal(Local):
    planned: Local | None = None
