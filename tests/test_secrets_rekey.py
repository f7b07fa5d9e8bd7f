"""secrets.rekey with the real sops and age: files under an old key become readable with the new
one (and only after), files found by their sops metadata whatever their name, files nobody can
decrypt named with the way to re-create them, --yes required, and the dry-run is the run."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from domum_tasks.secrets import recipients as R
from domum_tasks.secrets import tasks as T
from tests.conftest import REPO
from tests.sops_repo import CONFIG, SECRET, Repo, make_repo, use_key

PLAIN_NAME = "cluster/apps/demo/extra.yaml"  # a SOPS file without .sops. in its name
FILES = ["config/secrets.sops.yaml", "cluster/apps/demo/secret.sops.yaml", PLAIN_NAME]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """Everything encrypted to `old`; .sops.yaml already names `new` (what the user edits)."""
    r = make_repo(tmp_path, monkeypatch)
    old, new = r.key("old"), r.key("new")
    r.encrypt(FILES[0], CONFIG, old, k8s=False)
    r.encrypt(FILES[1], SECRET, old)
    r.encrypt(PLAIN_NAME, {**SECRET, "metadata": {"name": "extra", "namespace": "demo"}}, old)
    (r.root / "cluster/apps/demo/plain.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    r.write_sops_yaml(new, new)
    return r


def _run(**kw: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            T.rekey(Context(), **kw)
        except Exit as exc:
            code = exc.code
            err.write(str(exc.message or ""))
    return code, out.getvalue(), err.getvalue()


def test_files_are_found_by_their_metadata(repo: Repo) -> None:
    found = R.scan(repo.root, ["config", "cluster"])
    assert [f.rel for f in found] == sorted(FILES)
    assert all(f.recipients == {repo.public["old"]} for f in found)
    assert [f.is_kubernetes for f in found] == [True, True, False]


@pytest.mark.parametrize("fmt", ["dotenv", "ini"])
def test_dotenv_and_ini_files_are_found_too(repo: Repo, fmt: str) -> None:
    from tests.sops_repo import sops

    plain = "A=1\n" if fmt == "dotenv" else "[s]\nA = 1\n"
    proc = sops(
        "encrypt", "--age", repo.public["old"], "--input-type", fmt, "--output-type", fmt,
        "/dev/stdin", stdin=plain, cwd=repo.root.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    target = repo.root / "cluster/apps/demo/app.conf"
    target.write_text(proc.stdout)
    found = R.read(target, repo.root)
    assert found is not None and found.recipients == {repo.public["old"]}
    assert found.is_kubernetes  # a secretGenerator input Flux decrypts
    assert R.read(repo.root / "cluster/apps/demo/plain.yaml", repo.root) is None


def test_rekey_moves_every_file_to_the_new_key(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    use_key(repo, monkeypatch, "old")  # the user holds the old key, as sops needs
    for rel in FILES:
        assert repo.decrypt(rel, "new").returncode != 0, f"{rel} readable before"
    code, out, err = _run(yes=True)
    assert code == 0, err
    assert out.splitlines() == [f"re-keyed {rel}" for rel in sorted(FILES)]
    for rel in FILES:
        proc = repo.decrypt(rel, "new")
        assert proc.returncode == 0, proc.stderr
        assert repo.decrypt(rel, "old").returncode != 0  # the old key is gone
    assert "hunter2-not-a-real-token" in repo.decrypt(FILES[1], "new").stdout
    # nothing left to do: a second run changes nothing
    code, out, _ = _run(yes=True)
    assert (code, out.strip()) == (0, "nothing to re-key")


def test_the_dry_run_names_each_file_and_its_recipients(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_key(repo, monkeypatch, "old")
    before = {rel: (repo.root / rel).read_text() for rel in FILES}
    code, out, _ = _run(dry_run=True)
    assert code == 0
    old, new = repo.public["old"], repo.public["new"]
    for rel in FILES:
        line = next(x for x in out.splitlines() if rel in x and "updatekeys" in x)
        assert (
            f"{old[:12]}" in line
            and f"-> {new[:12]}" in line
            and line.lstrip().startswith(tuple(f"{n}. !!" for n in range(1, 4)))
        )
    assert {rel: (repo.root / rel).read_text() for rel in FILES} == before


def test_without_yes_and_no_terminal_nothing_changes(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_key(repo, monkeypatch, "old")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    before = {rel: (repo.root / rel).read_text() for rel in FILES}
    code, _, err = _run()
    assert code == 4 and "pass --yes" in err
    assert {rel: (repo.root / rel).read_text() for rel in FILES} == before


def test_a_file_no_key_of_yours_opens_is_named_with_how_to_recreate_it(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committed examples are encrypted to the throwaway placeholder: nobody can re-key
    them. The others are re-keyed; the task then exits 2 naming each stuck file."""
    use_key(repo, monkeypatch, "old")
    example = "cluster/core/03-cert-manager/issuers/cloudflare-api-token.sops.yaml"
    target = repo.root / "cluster/apps/demo/cloudflare.sops.yaml"
    shutil.copy(REPO / example, target)
    assert R.read(target, repo.root).placeholder  # type: ignore[union-attr]
    code, out, err = _run(yes=True)
    assert code == 2
    assert "cannot be re-keyed" in err and "cluster/apps/demo/cloudflare.sops.yaml" in err
    assert "throwaway placeholder" in err and "sops encrypt --filename-override" in err
    assert "stringData.api-token" in err  # which values the user must supply
    assert len(out.splitlines()) == len(FILES)  # the others were re-keyed
    assert repo.decrypt(FILES[1], "new").returncode == 0


def test_a_placeholder_left_in_sops_yaml_is_refused_first(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.write_sops_yaml(repo.public["new"], R.THROWAWAY_RECIPIENT)
    code, _, err = _run(dry_run=True)  # no key needed to say so
    assert code == 2 and "still name a placeholder recipient" in err
    assert "^cluster/" in err and "inv secrets.init" in err


def test_no_key_at_all_is_bad_input(repo: Repo) -> None:
    code, _, err = _run(dry_run=True)
    assert code == 2 and "no age key" in err


@pytest.mark.parity("secrets.rekey")
def test_rekey_parity(plan_parity: Any, repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    use_key(repo, monkeypatch, "old")
    plans = plan_parity(T.rekey, yes=True)
    argvs = [s["argv"] for p in plans for s in p]
    assert [a[a.index("updatekeys") :] for a in argvs] == [
        ["updatekeys", "-y", str(repo.root / rel)] for rel in sorted(FILES)
    ]
    assert repo.decrypt(FILES[0], "new").returncode == 0


def test_the_json_report_lists_what_was_done(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    use_key(repo, monkeypatch, "old")
    code, out, _ = _run(yes=True, json=True)
    assert code == 0 and json.loads(out) == {"rekeyed": sorted(FILES), "cannot": []}
