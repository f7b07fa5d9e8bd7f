"""The generated pages (docs/reference/*.md, docs/networking.md) are committed up to date, say
what their sources say, and `inv check` warns when the network page is stale."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Collection, ParseError, Parser

from domum_tasks import ns
from domum_tasks.docs import networking
from domum_tasks.docs.checks import check_networking
from domum_tasks.docs.examples import EXAMPLES
from domum_tasks.docs.generate import pages, stale, write
from domum_tasks.inventory.loader import load_with_findings

REPO = Path(__file__).resolve().parent.parent
EMBEDDED = REPO / "config" / "domum.yaml"


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DOMUM_INVENTORY", raising=False)
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(REPO))
    return EMBEDDED


def test_committed_pages_match_the_generator(embedded: Path) -> None:
    out = stale(REPO, pages())
    assert out == [], f"out of date: {out}; run `python -m domum_tasks.docs` and commit them"


def test_generated_pages_are_in_the_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text()
    for rel in pages(EMBEDDED):
        assert rel.removeprefix("docs/") in nav, rel


# --- the network page against the inventory file itself (read with plain YAML) -------------


def _raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EMBEDDED.read_text())
    return data


def _rows(page: str, heading: str) -> list[list[str]]:
    section = page.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [
        [c.strip().strip("`") for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
    ][1:]


def test_network_page_lists_every_dhcp_reservation() -> None:
    page = (REPO / networking.PAGE).read_text()
    want = sorted(
        (str(n["mac"]).lower(), str(n["ip"]), str(n["hostname"])) for n in _raw()["nodes"].values()
    )
    got = sorted(tuple(r) for r in _rows(page, "DHCP reservations for the router"))
    assert got == want


def test_network_page_names_the_vip_pool_ingress_dns_nas_and_proxmox() -> None:
    page = (REPO / networking.PAGE).read_text()
    raw = _raw()
    metallb = raw["site"]["metallb"]
    for value in (
        raw["cluster"]["vip"],
        raw["cluster"]["gateway"],
        metallb["addresses"],
        metallb["ingress_ip"],
        metallb["dns_ip"],
        raw["nas"]["host"],
        *(h["api_url"].split("//", 1)[1].split(":", 1)[0] for h in raw["proxmox"].values()),
        *(c["net"]["ip"].split("/", 1)[0] for c in raw["containers"].values()),
    ):
        assert f"`{value}`" in page, value


# --- the environment page against the module that reads the environment -------------------


def test_every_variable_settings_reads_is_in_the_table() -> None:
    tree = ast.parse((REPO / "domum_tasks" / "settings.py").read_text())
    read = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"(DOMUM_[A-Z_]+|CI|XDG_CONFIG_HOME)", node.value)
    }
    page = (REPO / "docs" / "reference" / "environment.md").read_text()
    listed = {line.split("|")[1].strip() for line in page.splitlines() if line.startswith("| ")}
    assert read, "no variable names found in settings.py"
    assert read <= listed, sorted(read - listed)


# --- the task reference: every task, every option, examples that parse --------------------


def _walk(coll: Collection, prefix: str = "") -> list[tuple[str, Any]]:
    out = [(prefix + n, t) for n, t in coll.tasks.items()]
    for n, sub in coll.collections.items():
        out += _walk(sub, f"{prefix}{n}.")
    return out


def test_reference_has_every_task_and_option() -> None:
    page = (REPO / "docs" / "reference" / "tasks.md").read_text()
    for name, task in _walk(ns):
        section = page.split(f"### `{name}`\n", 1)
        assert len(section) == 2, f"{name} has no section"
        body = section[1].split("\n### ", 1)[0]
        for arg in task.get_arguments():
            assert f"`--{arg.names[0]}" in body, f"{name} --{arg.names[0]}"


def _argv(command: str) -> list[str]:
    words = [w for w in shlex.split(command) if not re.fullmatch(r"[A-Z_]+=.*", w)]
    assert words[0] == "inv", command
    return words[1:]


@pytest.mark.parametrize("task", sorted(EXAMPLES))
def test_examples_parse_as_the_task_s_options(task: str) -> None:
    """invoke's own parser: an unknown task or option, or an option without its value, fails."""
    contexts = ns.to_contexts()
    for example in EXAMPLES[task]:
        try:
            parsed = Parser(contexts=contexts).parse_argv(_argv(example.command))
        except ParseError as exc:
            pytest.fail(f"{example.command}: {exc}")
        assert [c.name for c in parsed] == [task], example.command


# --- the generator's --check and `inv check`'s warning ---------------------------------------


def test_generator_check_mode_fails_until_the_pages_are_written(tmp_path: Path) -> None:
    env = {**os.environ, "DOMUM_REPO_ROOT": str(tmp_path), "DOMUM_INVENTORY": str(EMBEDDED)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "domum_tasks.docs", *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    before = run("--check")
    assert before.returncode == 1
    assert "docs/networking.md: out of date" in before.stderr
    assert run().returncode == 0
    assert run("--check").returncode == 0
    assert (tmp_path / "docs" / "networking.md").read_text() == (REPO / networking.PAGE).read_text()


def test_check_warns_on_a_stale_network_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(tmp_path))
    loaded = load_with_findings()  # conftest's loopback inventory, not the embedded one
    page = tmp_path / networking.PAGE

    (missing,) = check_networking(loaded)
    assert missing.severity == "ok"

    page.parent.mkdir(parents=True)
    page.write_text((REPO / networking.PAGE).read_text())  # the embedded homelab's page
    (row,) = check_networking(loaded)
    assert row.severity == "warning"
    assert "out of date" in row.message

    write(
        tmp_path,
        {networking.PAGE: networking.render(loaded.inventory, networking.source_name(loaded.path))},
    )
    (fresh,) = check_networking(loaded)
    assert fresh.severity == "ok"
