"""`inv pi.flash`: write a node's boot image onto an SD card, USB disk or image file.

A declaration: session.py probes and plans (plan.py is the pure planner, facts.py the target
probes and safety rules), its handlers download, write, verify and customize; all imported only
when the task runs.
"""

from __future__ import annotations

from typing import Any

from ...taskutil import Planned, plan_task


@plan_task(
    yes=True,
    help={
        "device": "whole disk to overwrite (e.g. /dev/sdb, /dev/mmcblk0), or a file path to "
        "write an image file",
        "image": "image to write instead of the inventory's: a local path or an http(s) URL",
        "force": "allow a disk that does not report itself removable (internal or USB-SATA), "
        "and an image without an MBR/GPT partition table or under 1 MiB",
    },
)
def flash(
    c: Any, node: str = "", device: str = "", image: str = "", force: bool = False
) -> Planned:
    """Write a node's boot image to a disk or file, verify it, prepare first boot."""
    from . import session as flash_session

    return flash_session.plan(node=node, device=device, image=image, force=force)


TASKS: list[Any] = [flash]
