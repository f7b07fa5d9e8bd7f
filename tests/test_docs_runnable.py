"""Every command the docs mark runnable runs, offline, and exits as the docs say.

A fenced ```sh block directly after a line `<!-- runnable -->` (or `<!-- runnable exit=N -->`)
in README.md or docs/**/*.md is run with `bash -eo pipefail` from the repo root, against the
embedded inventory (config/domum.yaml), inside a network namespace of its own (`unshare -rn`: only
loopback exists), so no packet can reach the homelab. Exit 0 is expected, or N.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!--\s*runnable(?:\s+exit=(\d+))?\s*-->\s*$")
FENCE_OPEN = re.compile(r"^```sh\s*$")


@dataclass(frozen=True)
class Block:
    where: str  # file:line of the marker
    script: str
    exit_code: int


def extract(text: str, name: str) -> list[Block]:
    """The runnable blocks of one Markdown file. A marker that is not directly followed by a
    ```sh fence is an error: the example it meant would silently never run."""
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        m = MARKER.match(line.strip())
        if not m:
            continue
        where = f"{name}:{i + 1}"
        if i + 1 >= len(lines) or not FENCE_OPEN.match(lines[i + 1].strip()):
            raise ValueError(f"{where}: `<!-- runnable -->` must be directly followed by ```sh")
        body = []
        for j in range(i + 2, len(lines)):
            if lines[j].strip() == "```":
                break
            body.append(lines[j])
        else:
            raise ValueError(f"{where}: the ```sh block is not closed")
        blocks.append(Block(where, "\n".join(body) + "\n", int(m.group(1) or 0)))
    return blocks


def doc_files() -> list[Path]:
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file()]


def all_blocks() -> list[Block]:
    out = []
    for path in doc_files():
        out += extract(path.read_text(), str(path.relative_to(REPO)))
    return out


def test_extract_reads_markers_exit_codes_and_ignores_unmarked_blocks() -> None:
    text = "\n".join(
        [
            "```sh",
            "inv not-marked",
            "```",
            "<!-- runnable -->",
            "```sh",
            "inv check",
            "inv --list | head -1",
            "```",
            "text",
            "<!-- runnable exit=2 -->",
            "```sh",
            "inv pi.flash --node 1",
            "```",
        ]
    )
    assert extract(text, "x.md") == [
        Block("x.md:4", "inv check\ninv --list | head -1\n", 0),
        Block("x.md:10", "inv pi.flash --node 1\n", 2),
    ]


@pytest.mark.parametrize(
    "text", ["<!-- runnable -->\n\n```sh\ninv check\n```", "<!-- runnable -->\n```sh\ninv check"]
)
def test_a_marker_without_its_block_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"x\.md:1"):
        extract(text, "x.md")


def _namespace_argv() -> list[str]:
    """unshare with a user namespace (-r) works unprivileged; as root plain -n does too."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed to run the examples without a network")
    for argv in (["unshare", "-rn"], ["unshare", "-n"]):
        probe = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return argv
    pytest.skip(f"no network namespace here: {probe.stderr.strip()}")


# Bring loopback up (a new namespace has it down), then run the block as a script.
_RUNNER = 'ip link set lo up 2>/dev/null || true; exec bash -eo pipefail "$0"'


@pytest.mark.integration
@pytest.mark.parametrize("block", all_blocks(), ids=lambda b: b.where)
def test_runnable_example(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The embedded inventory, from this checkout; the isolated cache/bin dirs of conftest stay.
    monkeypatch.delenv("DOMUM_INVENTORY", raising=False)
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(REPO))
    script = tmp_path / "example.sh"
    script.write_text(block.script)
    proc = subprocess.run(
        [*_namespace_argv(), "bash", "-c", _RUNNER, str(script)],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == block.exit_code, (
        f"{block.where}: exit {proc.returncode}, the docs say {block.exit_code}\n"
        f"$ {block.script}\n--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-2000:]}"
    )
