"""The rows `domum status` shows and the probes that make them (data only, no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Row:
    """One line of the screen: `detail` is the summary when ok, the reason when not."""

    part: str
    name: str
    ok: bool
    detail: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "fields": self.fields,
        }


# A probe's body gets its own timeout (seconds) to hand down to the commands and sockets it
# opens, and returns its rows (several: a Flux listing is one row per object).
ProbeFn = Callable[[float], list[Row]]


@dataclass(frozen=True)
class Probe:
    part: str
    name: str  # the row's name when the probe times out or fails as a whole
    timeout_s: float
    run: ProbeFn


def known(row: Row) -> ProbeFn:
    """A probe whose answer is known without asking anything (a tool or file missing)."""
    return lambda _timeout_s: [row]
