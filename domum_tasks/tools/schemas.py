"""Schemas for users: where the pinned Talos config schema and the CRD schemas are cached.

`inv tools.install` downloads them (sha256-pinned, see tools/schema_pins.py) into
`$DOMUM_CACHE_DIR/schemas` (else the user cache dir, platformdirs `domum/schemas`):
    talos/talos-config.<v1.13>.schema.json
    crd/<group>/<kind>_<version>.json         (kubeconform's layout)
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("DOMUM_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "schemas"
    import platformdirs

    return Path(platformdirs.user_cache_dir("domum")) / "schemas"


def crd_cache_dir() -> Path:
    return cache_root() / "crd"


def talos_cache_dir() -> Path:
    return cache_root() / "talos"
