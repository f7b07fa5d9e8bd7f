"""Phase preflight (read-only): `check` passes, the tools are there, the age key exists and
decrypts the cluster's SOPS files, the Git token and the Cloudflare API token (cert-manager's
DNS-01 Secret in cluster/) are set and not placeholders."""

from __future__ import annotations

from ..errors import ConfigError, Refused, ToolMissing
from .model import Ctx, Part

TOOLS = ("talosctl", "flux", "kubectl", "sops", "age-keygen", "restic")


def preflight(ctx: Ctx) -> Part:
    from ..check import run_checks
    from ..tools import find_tool, install_hint

    part = Part("inventory, tools, keys and tokens")
    errors = [f for f in run_checks() if f.severity == "error"]
    if errors:
        first = errors[0]
        raise ConfigError(
            f"`domum check` fails ({len(errors)} error(s)); first: {first.subject}: {first.message}",
            hint="run `domum check` for all of them",
        )
    part.probe["check"] = "passes"
    missing = [t for t in TOOLS if find_tool(t) is None]
    if missing:
        raise ToolMissing(f"not installed: {', '.join(missing)}", hint=install_hint(missing[0]))
    part.probe["tools"] = "all found: " + ", ".join(TOOLS)
    part.probe["age key"] = _age_key()
    part.probe["git token"] = _git_token(ctx)
    part.probe["cloudflare token"] = _cloudflare_token()
    part.skip = "read-only"
    return part


def _age_key() -> str:
    from ..flux import sops_age
    from ..inventory.loader import repo_root
    from ..secrets.facts import identities

    mine = {i.public for i in identities()}
    if not mine:
        raise Refused("no age key found", hint="`inv secrets.init` creates one")
    files = sops_age.cluster_files(repo_root())
    bad = sops_age.undecryptable(files, mine)
    if bad:
        err = sops_age.refusal(bad, mine)
        err.hint = err.hint or "`inv secrets.rekey` re-encrypts them to your key"
        raise err
    return f"{len(mine)} key(s); every SOPS file of cluster/ ({len(files)}) decrypts"


def _git_token(ctx: Ctx) -> str:
    from .. import settings
    from ..flux.plan import TOKEN_ENV, TOKEN_SECRET_KEY
    from ..secrets.store import is_placeholder
    from ..secrets.store import load as load_secrets

    env_var = TOKEN_ENV[ctx.inv.flux.provider]
    token: str | None = settings.get(env_var)
    where = env_var
    if not token:
        token, where = load_secrets().get(TOKEN_SECRET_KEY), TOKEN_SECRET_KEY
    if not token or is_placeholder(token):
        raise ConfigError(
            f"no usable Git token for flux bootstrap ({where} is "
            f"{'a placeholder' if token else 'unset'}): set {env_var}, or {TOKEN_SECRET_KEY} "
            "in config/secrets.sops.yaml"
        )
    return f"set ({where})"


# The Secret the ClusterIssuers read (cluster/core/03-cert-manager/issuers/clusterissuers.yaml:
# apiTokenSecretRef name and key).
CLOUDFLARE_SECRET, CLOUDFLARE_KEY = "cloudflare-api-token", "api-token"


def _cloudflare_token() -> str:
    """Decrypted in memory (the age key decrypts it: checked above), never shown."""
    import base64

    import yaml

    from ..flux import sops_age
    from ..inventory.loader import repo_root
    from ..secrets.store import decrypt_file, is_placeholder

    for f in sops_age.cluster_files(repo_root()):
        if "Secret" not in f.kinds:
            continue
        docs = list(yaml.safe_load_all(f.path.read_text()))  # metadata stays plain text
        if not any(
            isinstance(d, dict) and (d.get("metadata") or {}).get("name") == CLOUDFLARE_SECRET
            for d in docs
        ):
            continue
        doc = decrypt_file(f.path)
        value = str((doc.get("stringData") or {}).get(CLOUDFLARE_KEY) or "")
        if not value and (doc.get("data") or {}).get(CLOUDFLARE_KEY):
            value = base64.b64decode(str(doc["data"][CLOUDFLARE_KEY])).decode(errors="replace")
        if not value or is_placeholder(value):
            raise ConfigError(
                f"{f.rel}: {CLOUDFLARE_KEY} is {'a placeholder' if value else 'unset'}: "
                "cert-manager could not get a certificate",
                hint=f"`sops {f.rel}` and put your Cloudflare API token there "
                "(Zone:DNS:Edit and Zone:Zone:Read on site.domain)",
            )
        return f"set ({f.rel})"
    return f"no {CLOUDFLARE_SECRET} Secret in cluster/ (no DNS-01 issuer to feed)"
