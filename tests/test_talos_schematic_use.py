"""Registration before use: an unreachable factory refuses ids nobody recorded (the factory
serves image/<id> and installer/<id> only for POSTed schematics: image-factory
internal/frontend/http image.go/registry.go look the id up and answer 404 otherwise)."""

from __future__ import annotations

import pytest

from domum_tasks.errors import Refused
from domum_tasks.talos.ops import schematics

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
