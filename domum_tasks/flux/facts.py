"""Pure parsers of flux CLI output (read-only probes run by the tasks)."""

from __future__ import annotations

from typing import Literal


def parse_table(text: str) -> list[dict[str, str]]:
    """flux's `get` tables: a header row, then rows whose cells are space-padded and each
    followed by a tab (printers.TablePrinter). Keys are the lower-cased header names."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = [c.strip().lower() for c in lines[0].rstrip("\t").split("\t")]
    rows = []
    for line in lines[1:]:
        cells = [c.strip() for c in line.rstrip("\t").split("\t")]
        if len(cells) < len(header):
            cells += [""] * (len(header) - len(cells))
        # A message may itself hold a tab: the cells past the header belong to the last column.
        cells = [*cells[: len(header) - 1], "\t".join(cells[len(header) - 1 :]).strip()]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def diff_outcome(returncode: int, stdout: str, stderr: str) -> Literal["same", "differs", "error"]:
    """`flux diff kustomization` exits 1 both for "drift found" and for errors; drift is
    reported as `►` lines on stdout, errors as `✗` on stderr."""
    if returncode == 0:
        return "same"
    if returncode == 1 and "►" in stdout and "✗" not in stderr:
        return "differs"
    return "error"
