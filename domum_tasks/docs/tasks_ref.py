"""docs/reference/tasks.md from the task collection: every task's docstring, options (help and
default), aliases and examples (examples.py). As pyinfra builds its operations reference from
its code (pyinfra's scripts/generate_operations_docs.py), the page cannot drift from the tasks."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

from invoke import Argument, Collection, Task

from .examples import EXAMPLES, Example
from .md import cell, prose

PAGE = "docs/reference/tasks.md"


def walk(coll: Collection, prefix: str = "") -> Iterator[tuple[str, Task[Any]]]:
    """(dotted name, task), the root's tasks first, then each namespace in the order it was added."""
    for name, task in coll.tasks.items():
        yield prefix + name, task
    for name, sub in coll.collections.items():
        yield from walk(sub, f"{prefix}{name}.")


def _cell(text: str) -> str:
    return cell(prose(text))


def _flags(arg: Argument) -> str:
    names = sorted(arg.names, key=len, reverse=True)
    shown = [f"--{n}" if len(n) > 1 else f"-{n}" for n in names]
    if arg.kind is not bool:
        shown[0] += " " + ("N" if arg.kind in (int, float) else "VALUE")
    return ", ".join(f"`{s}`" for s in shown)


def _default(arg: Argument) -> str:
    if arg.kind is bool:
        return "on" if arg.default else "off"
    if arg.default in (None, ""):
        return "-"
    return f"`{arg.default}`"


def _options(task: Task[Any]) -> list[str]:
    # invoke's Task.arg_opts pops each option's help out of task.help as it builds the
    # Argument (invoke/tasks.py): put it back, or the task loses its help in this process.
    saved = dict(task.help)
    try:
        args = task.get_arguments()
    finally:
        task.help.update(saved)
    if not args:
        return ["No options.", ""]
    lines = ["| option | default | help |", "|---|---|---|"]
    lines += [f"| {_flags(a)} | {_default(a)} | {_cell(a.help or '')} |" for a in args]
    return [*lines, ""]


def _examples(examples: list[Example]) -> list[str]:
    lines = ["Examples:", ""]
    for ex in examples:
        if ex.note:
            lines += [f"- {prose(ex.note)}:", ""]
        if ex.runs is not None:
            lines.append(
                "<!-- runnable -->" if ex.runs == 0 else f"<!-- runnable exit={ex.runs} -->"
            )
        lines += ["```sh", ex.command, "```", ""]
    return lines


def _task(name: str, task: Task[Any]) -> list[str]:
    doc = inspect.getdoc(task.body) or ""
    lines = [f"### `{name}`", "", prose(doc), ""]
    if task.aliases:
        lines += ["Aliases: " + ", ".join(f"`{a}`" for a in task.aliases), ""]
    lines += _options(task)
    examples = EXAMPLES.get(name, [])
    if examples:
        lines += _examples(examples)
    return lines


def _summary(tasks: list[tuple[str, Task[Any]]]) -> list[str]:
    lines = ["| task | what it does |", "|---|---|"]
    for name, task in tasks:
        first = (inspect.getdoc(task.body) or "").split("\n", 1)[0]
        anchor = re.sub(r"[^a-z0-9_-]", "", name.replace(".", ""))
        lines.append(f"| [`{name}`](#{anchor}) | {_cell(first)} |")
    return [*lines, ""]


def render(ns: Collection) -> str:
    tasks = list(walk(ns))
    groups: dict[str, list[tuple[str, Task[Any]]]] = {}
    for name, task in tasks:
        groups.setdefault(name.split(".", 1)[0] if "." in name else "", []).append((name, task))
    lines = [
        "# Task reference",
        "",
        "<!-- Generated from the task collection by `python -m domum_tasks.docs`; do not edit. -->",
        "",
        "Every task of `inv --list`, generated from the code: its docstring, its options (the "
        "same help `inv --help TASK` prints) and examples. `domum TASK` and `inv TASK` are the "
        "same. Short flags: `-d` is `--dry-run`, `-j` `--json`, `-y` `--yes`, `-n` `--node`.",
        "",
    ]
    for group, members in groups.items():
        lines += [f"## {group or 'Top level'}", "", *_summary(members)]
        for name, task in members:
            lines += _task(name, task)
    missing = sorted(set(EXAMPLES) - {name for name, _ in tasks})
    if missing:  # an example of a renamed or removed task must not vanish silently
        raise ValueError(f"examples.py names tasks that do not exist: {', '.join(missing)}")
    return "\n".join(lines).rstrip("\n") + "\n"
