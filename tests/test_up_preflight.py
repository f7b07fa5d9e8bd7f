"""up's preflight: the Cloudflare API token cert-manager's DNS-01 issuer reads (the
cloudflare-api-token Secret in cluster/, SOPS-encrypted with the real sops and age) must be set
and not the example's placeholder; it is decrypted in memory and never shown."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from domum_tasks.errors import ConfigError
from domum_tasks.up.preflight import _cloudflare_token
from tests.sops_repo import Repo, make_repo, use_key

REL = "cluster/core/03-cert-manager/issuers/cloudflare-api-token.sops.yaml"
TOKEN = "Zq3-not-a-real-cloudflare-token-7f0e"


def _secret(**values: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cloudflare-api-token", "namespace": "cert-manager"},
        "type": "Opaque",
        **values,
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    r = make_repo(tmp_path, monkeypatch)
    r.key("mine")
    use_key(r, monkeypatch, "mine")
    return r


@pytest.mark.parametrize("value", ["change-me", "CHANGE_ME", ""])
def test_a_placeholder_or_empty_token_is_refused(repo: Repo, value: str) -> None:
    repo.encrypt(REL, _secret(stringData={"api-token": value}), repo.public["mine"])
    with pytest.raises(ConfigError) as err:
        _cloudflare_token()
    assert f"{REL}: api-token is {'a placeholder' if value else 'unset'}" in str(err.value)
    assert err.value.hint and f"`sops {REL}`" in err.value.hint


def test_a_real_token_passes_and_is_never_shown(repo: Repo) -> None:
    repo.encrypt(REL, _secret(stringData={"api-token": TOKEN}), repo.public["mine"])
    assert _cloudflare_token() == f"set ({REL})"


def test_the_data_form_is_read_too(repo: Repo) -> None:
    b64 = base64.b64encode(b"change-me").decode()
    repo.encrypt(REL, _secret(data={"api-token": b64}), repo.public["mine"])
    with pytest.raises(ConfigError, match="is a placeholder"):
        _cloudflare_token()


def test_no_such_secret_is_no_dns01_issuer(repo: Repo) -> None:
    other = _secret(stringData={"token": "change-me"})
    other["metadata"] = {"name": "demo", "namespace": "demo"}
    repo.encrypt("cluster/apps/demo/secret.sops.yaml", other, repo.public["mine"])
    assert "no cloudflare-api-token Secret in cluster/" in _cloudflare_token()
