"""The hardware watchdog is opt-in per node: a WatchdogTimerConfig (Talos arms it after boot),
never the Pi firmware's `dtparam=watchdog=on` (armed before the kernel: Pi 4 boot loops,
siderolabs/sbc-raspberrypi#38/#41, siderolabs/talos#10273)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from domum_tasks.errors import DomumError
from domum_tasks.inventory.loader import load
from domum_tasks.talos.genconfig import patches
from domum_tasks.talos.schematic import schematic_for
from tests.conftest import LOOPBACK_INVENTORY


def _inventory(tmp_path: Path, **node90: Any) -> Path:
    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["nodes"][90].update(node90)
    path = tmp_path / "domum.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _watchdog_docs(inv: Any, node_id: int) -> list[dict[str, Any]]:
    docs = patches.node_docs(inv, node_id, inv.nodes[node_id])
    return [d for d in docs if d.get("kind") == "WatchdogTimerConfig"]


def test_off_by_default_on_every_node() -> None:
    inv = load(LOOPBACK_INVENTORY)
    for i in inv.talos_nodes:
        assert _watchdog_docs(inv, i) == []


@pytest.mark.parametrize(
    ("value", "timeout"), [(True, "5m"), ({"timeout": "2m30s"}, "2m30s"), ({}, "5m")]
)
def test_opt_in_renders_the_document_and_leaves_the_schematic_alone(
    tmp_path: Path, value: Any, timeout: str
) -> None:
    inv = load(_inventory(tmp_path, watchdog=value))
    # kind and fields: runtime.WatchdogTimerV1Alpha1 in the Talos v1.13 config schema
    assert _watchdog_docs(inv, 90) == [
        {"apiVersion": "v1alpha1", "kind": "WatchdogTimerConfig",
         "device": "/dev/watchdog0", "timeout": timeout}
    ]  # fmt: skip
    assert schematic_for(inv, inv.nodes[90]) == schematic_for(
        load(LOOPBACK_INVENTORY), inv.nodes[90]
    )
    assert _watchdog_docs(inv, 91) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"timeout": "5s"}, "minimum value is 10s"),  # Talos's WatchdogTimerConfig Validate
        ({"timeout": "-1m"}, "minimum value is 10s"),
        ({"timeout": "soon"}, "is not a Go duration"),
        ("yes", "is not true, false or a mapping"),
        ({"timout": "1m"}, "did you mean 'timeout'"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, value: Any, message: str) -> None:
    with pytest.raises(DomumError, match=r"nodes\.90\.watchdog") as exc:
        load(_inventory(tmp_path, watchdog=value))
    assert message in str(exc.value)


def test_raspios_nodes_have_no_talos_watchdog(tmp_path: Path) -> None:
    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["nodes"][93]["watchdog"] = True
    path = tmp_path / "domum.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DomumError, match=r"nodes\.93\.watchdog: watchdog: is for Talos nodes"):
        load(path)
