"""flux.bootstrap and the cluster's age key, with the real sops and age and the strict flux and
kubectl stand-ins: a tree the cluster could not decrypt is refused (the injected fault: a
placeholder recipient), the `sops-age` Secret carries the user's key without it ever reaching an
argv, a log or the output, and the stand-in's bootstrap leaves the gotk files under the overlay."""

from __future__ import annotations

import io
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.flux import sops_age
from domum_tasks.flux import tasks as F
from domum_tasks.secrets import recipients as R
from tests.conftest import REPO
from tests.sops_repo import SECRET, FakeKubectl, Repo, identity, install_kubectl, make_repo, use_key

TOKEN = "ghp_not-a-real-token-0123456789"
OVERLAY = "cluster/overlays/homelab"  # the path of tests/data/loopback.yaml's flux: section
EXAMPLE = "cluster/core/03-cert-manager/issuers/cloudflare-api-token.sops.yaml"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """A tree whose Secret is encrypted to the user's key, and the user's key file."""
    r = make_repo(tmp_path, monkeypatch)
    mine = r.key("mine")
    r.write_sops_yaml(mine, mine)
    r.encrypt("cluster/apps/demo/secret.sops.yaml", SECRET, mine)
    (r.root / OVERLAY).mkdir(parents=True)
    (r.root / OVERLAY / "kustomization.yaml").write_text("resources: []\n")
    (r.root / "clusterconfig").mkdir()
    (r.root / "clusterconfig" / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    use_key(r, monkeypatch, "mine")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return r


@pytest.fixture
def kubectl(fake_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    return install_kubectl(fake_cli.bin_dir, tmp_path, monkeypatch)


def _run(**kw: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            F.bootstrap(Context(), **kw)
        except Exit as exc:
            code = exc.code
            err.write(str(exc.message or ""))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_placeholder_recipient_is_refused(
    repo: Repo, fake_cli: Any, kubectl: FakeKubectl, dry_run: bool
) -> None:
    """The injected fault: a committed example, encrypted to the throwaway key, in the tree."""
    shutil.copy(REPO / EXAMPLE, repo.root / "cluster/apps/demo/cloudflare.sops.yaml")
    code, out, err = _run(dry_run=dry_run)
    assert code == 2
    assert "cluster/apps/demo/cloudflare.sops.yaml" in err and "inv secrets.rekey" in err
    assert "placeholder recipient" in err
    assert "cluster/apps/demo/secret.sops.yaml" not in err  # that one is fine
    assert fake_cli.calls == [] and kubectl.records == [] and out == ""


def test_a_file_for_someone_elses_key_is_refused(
    repo: Repo, fake_cli: Any, kubectl: FakeKubectl
) -> None:
    other = repo.key("other")
    repo.encrypt("cluster/apps/demo/theirs.sops.yaml", SECRET, other)
    code, _, err = _run()
    assert code == 2 and "cluster/apps/demo/theirs.sops.yaml" in err
    assert f"{other[:12]}" in err and "not to your age key" in err
    assert fake_cli.calls == [] and kubectl.records == []


def test_without_any_age_key_the_tree_is_refused(
    repo: Repo, fake_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    code, _, err = _run(dry_run=True)
    assert code == 2 and "no age key of yours was found" in err


def test_the_talos_bundle_is_not_the_clusters_business(repo: Repo) -> None:
    """A SOPS file that is no Kubernetes object (the Talos secrets bundle) is never decrypted
    by Flux, whoever it is encrypted to."""
    other = repo.key("other")
    repo.encrypt(
        "cluster/core/01-talos/secrets.sops.yaml", {"cluster": {"id": "x"}}, other, k8s=False
    )
    files = sops_age.cluster_files(repo.root)
    assert [f.rel for f in files] == ["cluster/apps/demo/secret.sops.yaml"]


def test_bootstrap_creates_the_secret_from_stdin_then_writes_the_gotk_files(
    repo: Repo, fake_cli: Any, kubectl: FakeKubectl
) -> None:
    key = identity(repo.keys["mine"])
    code, out, err = _run()
    assert code == 0, err
    # the Secret: applied through stdin, holding exactly the user's identity
    (rec,) = kubectl.records
    assert rec["exit"] == 0 and rec["applied"] == [
        "Namespace/flux-system",
        "Secret/flux-system/sops-age",
    ]
    assert kubectl.secret_data("Secret/flux-system/sops-age").strip() == key
    # ... which decrypts the tree (the real sops, with only that Secret's content)
    from tests.sops_repo import sops

    holder = repo.root.parent / "from-secret.agekey"
    holder.write_text(kubectl.secret_data("Secret/flux-system/sops-age"))
    proc = sops("decrypt", str(repo.root / "cluster/apps/demo/secret.sops.yaml"), key_file=holder)
    assert proc.returncode == 0 and "hunter2-not-a-real-token" in proc.stdout
    # the key never in an argv, a log or the output
    every_argv = [*fake_cli.calls, *(r["argv"] for r in kubectl.records)]
    logs = fake_cli.log_path.read_text() + kubectl.log.read_text()
    for text in (str(every_argv), logs, out, err):
        assert key not in text and key[-20:] not in text
    # order: check --pre, the Secret, then bootstrap with --path the overlay
    heads = [c[1:3] for c in fake_cli.calls]
    assert heads == [["check", "--pre"], ["bootstrap", "github"]]
    boot = fake_cli.calls[1]
    assert boot[boot.index("--path") + 1] == OVERLAY
    # the stand-in wrote what flux v2.9 commits, under <path>/flux-system
    gotk = repo.root / OVERLAY / "flux-system"
    assert sorted(p.name for p in gotk.iterdir()) == [
        "gotk-components.yaml",
        "gotk-sync.yaml",
        "kustomization.yaml",
    ]
    assert "# Flux Version: v2.9.4" in (gotk / "gotk-components.yaml").read_text()
    repo_obj, ks = [
        d for d in yaml.safe_load_all((gotk / "gotk-sync.yaml").read_text()) if d is not None
    ]
    assert (repo_obj["kind"], repo_obj["metadata"]["name"]) == ("GitRepository", "flux-system")
    assert repo_obj["spec"]["url"] == "ssh://git@github.com/domum-lab/domum"
    assert ks["kind"] == "Kustomization" and ks["spec"]["path"] == f"./{OVERLAY}"
    assert ks["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
    kus = yaml.safe_load((gotk / "kustomization.yaml").read_text())
    assert kus["resources"] == ["gotk-components.yaml", "gotk-sync.yaml"]


def test_the_plan_shows_the_secret_step_without_the_key(repo: Repo, fake_cli: Any) -> None:
    key = identity(repo.keys["mine"])
    code, out, err = _run(dry_run=True)
    assert code == 0, err
    assert "flux.sops-age" in out and "kubectl apply" in out and "--server-side" in out
    assert key not in out and repo.public["mine"] in out  # the public half says which key


def test_only_the_identities_the_tree_needs_go_to_the_cluster(
    repo: Repo, fake_cli: Any, kubectl: FakeKubectl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user holding a second, personal key: it stays on the admin machine."""
    repo.key("personal")
    use_key(repo, monkeypatch, "personal", "mine")
    code, _, err = _run()
    assert code == 0, err
    assert kubectl.secret_data("Secret/flux-system/sops-age").strip() == identity(repo.keys["mine"])


def test_the_stand_in_refuses_a_second_bootstrap_to_another_path(
    repo: Repo, fake_cli: Any, kubectl: FakeKubectl
) -> None:
    """flux refuses to move an existing flux-system Kustomization (bootstrap_plain_git.go)."""
    fake_cli.set_state(bootstrapped_path="./cluster/overlays/prod")
    code, _, err = _run()
    assert code == 1 and "would overwrite path" in err


def test_the_stand_in_needs_the_token_like_flux(
    repo: Repo, fake_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    monkeypatch.delenv("GITHUB_TOKEN")
    proc = subprocess.run(
        [str(fake_cli.bin_dir / "flux"), "bootstrap", "github", "--owner", "o", "--repository", "r",
         "--path", "../x/./y"],
        capture_output=True, text=True, cwd=repo.root, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 1 and "could not read token" in proc.stderr
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    proc = subprocess.run(
        [str(fake_cli.bin_dir / "flux"), "bootstrap", "github", "--owner", "o", "--repository", "r",
         "--path", "../x/./y", "--components-extra", "image-reflector-controller"],
        capture_output=True, text=True, cwd=repo.root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sync = (repo.root / "x/y/flux-system/gotk-sync.yaml").read_text()
    assert "path: ./x/y" in sync  # SafeRelativePath: never above the repository
    head = (repo.root / "x/y/flux-system/gotk-components.yaml").read_text()
    assert "# Components: source-controller,kustomize-controller,helm-controller," in head
    assert head.splitlines()[3].endswith(",image-reflector-controller")


def test_inv_check_shows_the_committed_examples_as_one_warning() -> None:
    from domum_tasks.inventory.loader import load_with_findings

    rows = list(sops_age.check_tree(load_with_findings()))
    assert [r.severity for r in rows] == ["warning"]
    assert "inv secrets.rekey" in rows[0].message
    placeholders = [f for f in sops_age.cluster_files(REPO) if f.placeholder]
    assert placeholders and f"{len(placeholders)} SOPS file(s)" in rows[0].message
    assert all(f.recipients == {R.THROWAWAY_RECIPIENT} for f in placeholders)


def test_inv_check_is_quiet_once_the_tree_is_yours(repo: Repo) -> None:
    from domum_tasks.inventory.loader import load_with_findings

    rows = list(sops_age.check_tree(load_with_findings()))
    assert [r.severity for r in rows] == ["ok"]
