"""`inv pi.flash`: write a node's boot image onto an SD card, USB disk or image file.

Thin: the work is in flash_session (glue), flash_plan (pure planner), flash_facts (target probes
and safety rules), flash_download, flash_write and flash_firstboot, all imported only when run.
"""

from __future__ import annotations

from typing import Any

from ...taskutil import DRY_RUN, JSON, NODE, YES, domum_task


@domum_task(
    help={
        "node": NODE,
        "device": "whole disk to overwrite (e.g. /dev/sdb, /dev/mmcblk0), or a file path to "
        "write an image file",
        "image": "image to write instead of the inventory's: a local path or an http(s) URL",
        "yes": YES,
        "force": "allow a disk that does not report itself removable (internal or USB-SATA), "
        "and an image without an MBR/GPT partition table or under 1 MiB",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def flash(
    c: Any,
    node: str = "",
    device: str = "",
    image: str = "",
    yes: bool = False,
    force: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Write a node's boot image to a disk or file, verify it, prepare first boot."""
    from . import session as flash_session

    flash_session.run(
        node=node, device=device, image=image, yes=yes, force=force, dry_run=dry_run, json_out=json
    )


TASKS: list[Any] = [flash]
