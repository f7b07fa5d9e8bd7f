"""YAML as Talos reads it: Go's yaml.v3 follows YAML 1.2, where only true/false are booleans.

PyYAML's SafeLoader is YAML 1.1 and turns `auto: off` into False; Talos sees the string "off".
Anything that judges a Talos config the way the node does must load it with this loader.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core-schema booleans only."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_all(text: str) -> list[Any]:
    """Every non-empty document of a multi-document YAML text."""
    return [d for d in yaml.load_all(text, Loader=Yaml12Loader) if d is not None]
