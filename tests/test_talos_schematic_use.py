"""Registration before use: an unreachable factory refuses ids nobody recorded (the factory
serves image/<id> and installer/<id> only for POSTed schematics: image-factory
internal/frontend/http image.go/registry.go look the id up and answer 404 otherwise)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.errors import ConfigError, Refused
from domum_tasks.talos.ops import schematics
from tests.conftest import LOOPBACK_INVENTORY
from tests.fixtures.parity import json_arrays
from tests.test_talos_genconfig import env  # noqa: F401  (fixture)
from tests.test_talos_ops_exec import cluster_dir  # noqa: F401  (fixture)

DOWN = "http://127.0.0.1:9"  # nothing listens: connection refused
SID = "b" * 64


def test_unreachable_factory_refuses_an_unrecorded_id() -> None:
    with pytest.raises(Refused, match="not recorded") as exc:
        schematics.register({SID: "x"}, {"factory": DOWN, "ids": {SID: [92]}, "recorded": []})
    assert "nodes 92" in str(exc.value) and "inv talos.schematic" in (exc.value.hint or "")


def test_unreachable_factory_allows_a_recorded_id() -> None:
    done = schematics.register({SID: "x"}, {"factory": DOWN, "ids": {SID: [92]}, "recorded": [SID]})
    assert not done.confirmed and SID in done.unconfirmed


def test_without_use_an_unreachable_factory_is_an_outcome() -> None:
    done = schematics.register({SID: "x"}, {"factory": DOWN, "ids": {SID: [92]}})
    assert SID in done.unconfirmed


# --- the tasks that use an id: registered first, refused offline unless recorded -------------


def _inventory(path: Path, factory: str, edit: Any = None) -> Path:
    """A copy of the loopback inventory at `path` whose factory is `factory`."""
    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["cluster"]["image_factory"] = factory
    if edit is not None:
        edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _record(folder: Path, factory: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What a user does once online: `inv talos.schematic` registers every schematic and
    records the factory's answers in schematics.lock (beside the inventory, in `folder`)."""
    from domum_tasks.talos.ops.tasks import schematic

    monkeypatch.setenv("DOMUM_INVENTORY", str(_inventory(folder / "online.yaml", factory)))
    with contextlib.redirect_stdout(io.StringIO()):
        schematic(Context())
    lock = folder / "schematics.lock"
    assert lock.is_file()
    return lock


def test_an_inventory_id_that_is_not_its_schematics_is_bad_input(tmp_path: Path) -> None:
    """Only the schematic's own document can be registered (the id is a hash), so a stale
    inventory id is refused instead of silently booting other extensions."""
    from domum_tasks.inventory.loader import load
    from domum_tasks.talos.schematic import node_schematic_id, schematic_for

    inv = load(LOOPBACK_INVENTORY)
    own = schematic_for(inv, inv.nodes[97]).local_id

    def pin(value: str) -> Any:
        return lambda data: data["nodes"][97]["schematic"].update(id=value)

    same = load(_inventory(tmp_path / "same.yaml", DOWN, pin(own)))
    assert node_schematic_id(same, same.nodes[97]) == own
    stale = load(_inventory(tmp_path / "stale.yaml", DOWN, pin("e" * 64)))
    with pytest.raises(ConfigError, match=r"nodes\.97\.schematic\.id: e{64} is not the id") as exc:
        node_schematic_id(stale, stale.nodes[97])
    assert own in str(exc.value)


@pytest.mark.integration
def test_genconfig_refuses_an_unreachable_factory_until_the_ids_are_recorded(
    env: Any, image_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domum_tasks.talos.genconfig.tasks import genconfig

    folder = tmp_path / "config"
    folder.mkdir()
    offline = _inventory(folder / "domum.yaml", DOWN)
    monkeypatch.setenv("DOMUM_INVENTORY", str(offline))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        genconfig(Context(), dry_run=True, json=True)  # shows the POST; sends nothing
    (plan,) = json_arrays(out.getvalue())
    assert plan[0]["action"] == "talos.schematic-register" and plan[0]["args"]["recorded"] == []
    with pytest.raises(Exit) as exc:
        genconfig(Context())
    assert exc.value.code == 4 and "not recorded in schematics.lock" in str(exc.value.message)
    assert env.calls() == [] and env.patch_tree() == {}  # refused before anything else
    _record(folder, image_factory.url, monkeypatch)  # once online
    monkeypatch.setenv("DOMUM_INVENTORY", str(offline))
    with contextlib.redirect_stdout(io.StringIO()):
        genconfig(Context())  # offline again: the recorded ids may be used
    assert (env.root / "clusterconfig" / "talosconfig").is_file()


@pytest.mark.integration
def test_create_vm_refuses_an_unreachable_factory_unless_recorded(
    pve_sim: Any, image_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domum_tasks.proxmox.vm import tasks as vm_tasks

    data = yaml.safe_load(pve_sim.inventory_path.read_text())
    data["cluster"]["image_factory"] = DOWN
    pve_sim.inventory_path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(Exit) as exc, contextlib.redirect_stdout(io.StringIO()):
        vm_tasks.create_vm(Context(), node=96)
    assert exc.value.code == 4 and "could not register schematic" in str(exc.value.message)
    assert pve_sim.writes() == [] and pve_sim.pve.vm(196) is None  # no ISO download, no VM
    # recorded beside the inventory by an earlier registration: the ISO may be fetched
    _record(pve_sim.inventory_path.parent, image_factory.url, monkeypatch)
    monkeypatch.setenv("DOMUM_INVENTORY", str(pve_sim.inventory_path))
    with contextlib.redirect_stdout(io.StringIO()):
        vm_tasks.create_vm(Context(), node=96)
    assert [w[1] for w in pve_sim.writes()] == [
        "/nodes/pve1/storage/local/download-url",
        "/nodes/pve1/qemu",
    ]


@pytest.mark.integration
def test_upgrade_follows_the_same_rule(
    fake_cli: Any, cluster_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domum_tasks.talos.ops import tasks as T
    from tests.test_talos_parity import both_fail

    lock = cluster_dir / "config" / "schematics.lock"  # cluster_dir recorded the ids
    recorded = lock.read_text()
    lock.unlink()
    code, message = both_fail(T.upgrade, node="97", offline=True, no_flux=True)
    assert code == 4 and "--offline: schematic" in message and "nodes 97" in message
    # online with the factory down: refused at the register step, before any node
    inventory = cluster_dir / "config" / "domum.yaml"
    data = yaml.safe_load(inventory.read_text())
    data["cluster"]["image_factory"] = DOWN
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(Exit) as exc, contextlib.redirect_stdout(io.StringIO()):
        T.upgrade(Context(), node="97", no_flux=True, wait_timeout="1m")
    assert exc.value.code == 4 and "not recorded" in str(exc.value.message)
    assert not fake_cli.state.get("upgraded")
    lock.write_text(recorded)  # recorded before: the upgrade goes ahead offline
    with contextlib.redirect_stdout(io.StringIO()):
        T.upgrade(Context(), node="97", no_flux=True, wait_timeout="1m")
    assert fake_cli.state["upgraded"]["127.0.0.97"]


def test_the_factory_stand_in_answers_upstream_ids(image_factory: Any) -> None:
    """The stand-in answers a vector's document with the factory's id, whatever the text, so a
    divergence of Domum's canonical YAML from the factory's fails registration in tests."""
    from domum_tasks import download

    if not image_factory.vectors:
        pytest.skip("../shared/contracts/talos-upstream absent: no Image Factory vectors")
    doc, sid = next((d, i) for d, i in image_factory.vectors if d.get("customization"))
    text = yaml.safe_dump(doc, default_flow_style=True)  # not the canonical form
    status, answer = download.post(
        image_factory.url + "/schematics", text.encode(), content_type="application/yaml"
    )
    assert (status, yaml.safe_load(answer)) == (201, {"id": sid})
    status, _ = download.post(
        image_factory.url + "/schematics", b"bogus: 1\n", content_type="application/yaml"
    )
    assert status == 400  # unknown fields are rejected, as the factory's Unmarshal does
