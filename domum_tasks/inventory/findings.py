"""Where and what an inventory check found: a leaf module, shared by the loader and the checks it
runs (site_checks), so neither imports the other for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    severity: Literal["error", "warning"]
    loc: Loc
    message: str
    line: int | None = None

    def parts(self, file: str) -> tuple[str, str]:
        """(where, what): `file:line` and `[warning: ]field.path: message`."""
        where = f"{file}:{self.line}" if self.line else file
        path = ".".join(str(p) for p in self.loc) or "(top level)"
        prefix = "warning: " if self.severity == "warning" else ""
        return where, f"{prefix}{path}: {self.message}"

    def render(self, file: str) -> str:
        return ": ".join(self.parts(file))
