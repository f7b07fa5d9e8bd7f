"""Talos tasks (filled in by their owner)."""

from typing import Any

TASKS: list[Any] = []
