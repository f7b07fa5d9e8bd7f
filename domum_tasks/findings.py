"""The finding type of `inv check`: a leaf module, so checkers in any namespace can import it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .inventory.loader import Loaded


@dataclass(frozen=True)
class CheckFinding:
    check: str
    severity: Literal["ok", "warning", "error"]
    subject: str
    message: str


Checker = Callable[["Loaded"], Iterable[CheckFinding]]
