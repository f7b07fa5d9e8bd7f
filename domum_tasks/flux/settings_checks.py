"""`inv check` for the GitOps tree's settings: the committed cluster-settings ConfigMap must be
exactly what the inventory renders (a stale one means Flux deploys yesterday's values)."""

from __future__ import annotations

from collections.abc import Iterable

from ..findings import CheckFinding
from ..inventory.loader import DEFAULT_PATH, Loaded, repo_root
from .settings import SETTINGS_PATH, render

NAME = "flux-settings"


def check_settings(loaded: Loaded) -> Iterable[CheckFinding]:
    inv = loaded.inventory
    if inv.site is None:
        yield CheckFinding(
            NAME, "warning", "site", "no site: section; the GitOps tree's settings are not rendered"
        )
        return
    rendered = render(inv)  # ConfigError (no nas:) becomes an error finding in run_checks
    path = repo_root() / SETTINGS_PATH
    on_disk = path.read_text() if path.is_file() else None
    if on_disk == rendered:
        yield CheckFinding(NAME, "ok", SETTINGS_PATH, "matches the inventory")
        return
    state = "missing" if on_disk is None else "out of date"
    # Rendered from config/domum.yaml: drift is an error there (CI fails), one warning with
    # another inventory ($DOMUM_INVENTORY, tests), as for the Talos patches.
    if loaded.path.resolve() != DEFAULT_PATH.resolve():
        yield CheckFinding(
            NAME,
            "warning",
            SETTINGS_PATH,
            f"{state} for {loaded.path.name} (it is rendered from config/domum.yaml); "
            "`inv flux.render-settings` would rewrite it",
        )
        return
    yield CheckFinding(
        NAME,
        "error",
        SETTINGS_PATH,
        f"{state}: does not match config/domum.yaml; run `inv flux.render-settings`",
    )
