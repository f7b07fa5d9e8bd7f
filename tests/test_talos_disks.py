"""The Pi 5's disks: a flashed Talos Pi boots its card (install_disk has no effect, the inventory
says so), ephemeral_disk moves EPHEMERAL to the NVMe, and a full reset names every disk it wipes
(Talos wipes the system disk and the disks holding STATE and EPHEMERAL: block.go,
GetSystemDiskPaths)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from domum_tasks.inventory.loader import load, load_with_findings
from domum_tasks.talos import disks
from domum_tasks.talos.genconfig import patches
from domum_tasks.talos.ops import power
from tests.conftest import LOOPBACK_INVENTORY


def variant(tmp_path: Path, **node_changes: dict[str, Any]) -> Path:
    """The loopback inventory with some nodes' keys replaced (None removes a key)."""
    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    for nid, changes in node_changes.items():
        node = data["nodes"][int(nid.lstrip("n"))]
        for key, value in changes.items():
            if value is None:
                node.pop(key, None)
            else:
                node[key] = value
    path = tmp_path / "domum.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_install_disk_on_a_talos_pi_is_a_warning_that_says_why(tmp_path: Path) -> None:
    path = variant(tmp_path, n92={"install_disk": "/dev/nvme0n1"}, n93={})
    warnings = load_with_findings(path).warnings
    (pi,) = [w for w in warnings if "nodes.92.install_disk" in w]
    assert "never installs from an SBC image" in pi and "ephemeral_disk" in pi
    assert not [w for w in warnings if "nodes.93" in w]  # raspios Pis keep theirs
    assert not load_with_findings(LOOPBACK_INVENTORY).warnings


def test_ephemeral_volume_config_follows_the_inventory(tmp_path: Path) -> None:
    inv = load(variant(tmp_path, n97={"ephemeral_disk": {"serial": "S6*", "model": 'A"B'}}))
    doc = disks.ephemeral_volume_doc(inv.nodes[97])
    assert doc is not None and doc["kind"] == "VolumeConfig" and doc["name"] == "EPHEMERAL"
    match = doc["provisioning"]["diskSelector"]["match"]
    assert match == '!system_disk && glob("S6*", disk.serial) && glob("A\\"B", disk.model)'
    assert disks.ephemeral_volume_doc(inv.nodes[98]) is None


def test_install_selector_replaces_the_disk_in_the_patch(tmp_path: Path) -> None:
    inv = load(
        variant(tmp_path, n98={"install_disk": None, "install_disk_selector": {"wwid": "eui.1"}})
    )
    rendered = patches.render_docs(inv)
    (base,) = [d for d in rendered["cluster/core/01-talos/workers/node-98.yaml"] if "machine" in d]
    assert base["machine"]["install"] == {"diskSelector": {"wwid": "eui.1"}}
    pi4 = rendered["cluster/core/01-talos/controlplane/node-90.yaml"][0]
    assert pi4["machine"]["install"] == {"disk": "/dev/mmcblk0"}  # Talos's SBC guides' value


def test_full_reset_names_the_card_and_the_nvme() -> None:
    inv = load(LOOPBACK_INVENTORY)
    plan = power.plan_reset(inv, 92, full=True)
    (warning,) = [n for n in plan.notes if n.startswith("warning: --full")]
    assert "/dev/mmcblk0 (the card" in warning and "/dev/nvme0n1 (EPHEMERAL)" in warning
    assert "/dev/nvme0n1 (EPHEMERAL)" in plan.steps[0].desc  # the confirmation prompt shows it
    plan = power.plan_reset(inv, 97, full=True)
    assert "all of /dev/nvme0n1;" in plan.notes[-1]


def test_bad_ephemeral_disks_are_errors(tmp_path: Path) -> None:
    import pytest

    from domum_tasks.errors import ConfigError

    with pytest.raises(ConfigError, match="ephemeral_disk places"):
        load(variant(tmp_path, n93={"ephemeral_disk": "/dev/sda"}))
    with pytest.raises(ConfigError, match="not a device path"):
        load(variant(tmp_path, n97={"ephemeral_disk": "nvme0n1"}))
    with pytest.raises(ConfigError, match="give serial, wwid or model"):
        load(variant(tmp_path, n97={"install_disk_selector": {}}))
