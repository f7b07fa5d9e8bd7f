"""settings.py is the one module that reads the environment (DESIGN.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "domum_tasks"
NAMES = ("environ", "getenv", "environb")


def _reads_environment(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        attribute = (
            isinstance(node, ast.Attribute)
            and node.attr in NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )
        imported = (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in NAMES for a in node.names)
        )
        if attribute or imported:
            lines.append(node.lineno)
    return sorted(lines)


def test_only_settings_reads_the_environment() -> None:
    found = {
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in PACKAGE.rglob("*.py")
        if path != PACKAGE / "settings.py"
        for line in _reads_environment(ast.parse(path.read_text(), str(path)))
    }
    assert not found, f"os.environ read outside settings.py: {sorted(found)}"


def test_the_scanner_sees_each_spelling() -> None:
    code = "import os\nfrom os import environ\nos.environ.get('X')\nos.getenv('Y')\n"
    assert _reads_environment(ast.parse(code)) == [2, 3, 4]


def test_the_docs_name_every_variable_settings_reads() -> None:
    """The README's table moved into docs/ (issue 20): every variable is named there."""
    import re

    root = PACKAGE.parent
    docs = "\n".join(p.read_text() for p in sorted((root / "docs").rglob("*.md")))
    names = set(
        re.findall(r'"(DOMUM_[A-Z_]+|CI|XDG_CONFIG_HOME)"', (PACKAGE / "settings.py").read_text())
    )
    assert names and "DOMUM_INVENTORY" in names
    missing = sorted(n for n in names if f"`{n}`" not in docs)
    assert not missing, f"docs/ never names {missing}"
