"""What a phase is made of: parts, each probed, planned and run in turn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..errors import DomumError
    from ..inventory.model import Inventory
    from ..taskutil import Planned


@dataclass
class Options:
    wait: bool = False  # wait for absent Pis / mini PCs instead of stopping
    wait_timeout_s: float = 1800.0
    flux_timeout_s: float = 900.0
    talos_timeout: str = "10m"  # Go duration for talosctl health / bootstrap retries
    unit_dir: str = ""  # backup timers (default: /etc/systemd/system)
    poll_s: float = 10.0  # between two probes of `up`'s own waits (nodes appearing, Flux Ready)
    yes: bool = False


@dataclass
class Ctx:
    """What every part of one `up` run shares."""

    inv: Inventory
    options: Options
    changed: bool = False  # the current phase's inventory changed since it last finished
    booting: set[int] = field(default_factory=set)  # VMs this run created or started
    awaited: set[int] = field(default_factory=set)  # absent nodes --wait waits for
    flags: dict[str, Any] = field(default_factory=dict)  # a phase's first probe, for its parts


@dataclass
class Part:
    """One probe and the plans built from its answers. `planned` run in order; nothing
    planned means already there (`skip` says why). `depends`: what this part's probe could not
    see yet on a dry-run (the writes of an earlier part). `stop`: the run stops after this part
    (shown, or run), with this error (an absent node: what to do, and the resume hint)."""

    title: str
    probe: dict[str, str] = field(default_factory=dict)
    planned: list[Planned] = field(default_factory=list)
    skip: str = ""
    depends: str = ""
    notes: list[str] = field(default_factory=list)
    stop: DomumError | None = None

    def to_dict(self) -> dict[str, Any]:
        import json

        return {
            "part": self.title,
            "probe": self.probe,
            "depends": self.depends,
            "notes": self.notes,
            "skip": self.skip,
            "plans": [json.loads(p.plan.to_json()) for p in self.planned],
            "stop": str(self.stop) if self.stop else None,
        }


Builder = Callable[[Ctx], Part]


def planned_of(plan: Any, inv: Any, handlers: Any = None, tools: tuple[str, ...] = ()) -> Planned:
    from ..taskutil import Planned

    return Planned(plan, inv, dict(handlers or {}), tools=tools)


def task_planner(task: Any) -> Callable[..., Planned]:
    """The planner a `plan_task` declared (taskutil sets it): `up` runs its Planned itself."""
    planner: Callable[..., Planned] = task.planner
    return planner
