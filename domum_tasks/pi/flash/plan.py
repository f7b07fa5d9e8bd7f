"""The `pi.flash` planner (pure): node, image, probed target facts -> Plan of Local steps.

    download     fetch the image into the cache (resume, sha256 / lock check)   URL images only
    write-image  guard again, stream-decompress onto the target, hash on the way  destructive
    verify       fsync'd, read back from the medium, compare hashes
    customize    Raspberry Pi OS: cloud-init files into the FAT boot partition

Refusals found in the facts raise Refused here, before anything is planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import Refused
from ...plan import Local, Plan
from .facts import TargetFacts, describe_target, human, refusals
from .firstboot import FirstBoot
from .image import ImageSpec


@dataclass(frozen=True)
class FlashInput:
    node_id: int
    hostname: str
    os: str
    device: str
    spec: ImageSpec
    image_path: Path  # the cache entry for a URL, the file itself otherwise
    target: TargetFacts
    image_size: int | None  # decompressed, when known before downloading/writing
    image_id: tuple[int, int] | None = None
    firstboot: FirstBoot | None = None
    force: bool = False
    cached: bool = False  # the URL's file is already in the cache


def plan_flash(inp: FlashInput) -> Plan:
    problems = refusals(
        inp.target, image_size=inp.image_size, force=inp.force, image_id=inp.image_id
    )
    if problems:
        raise Refused("; ".join(problems))
    plan = Plan(f"flash node {inp.node_id} ({inp.hostname}) onto {inp.device}")
    src = str(inp.image_path)
    if inp.spec.is_url:
        plan.add(
            Local(
                "download",
                {
                    "url": inp.spec.source,
                    "path": src,
                    "sha256": inp.spec.sha256,
                    "trust_on_first_use": inp.spec.trust_on_first_use,
                },
                desc="already cached: re-check its hash"
                if inp.cached
                else "resumable, into the cache",
            )
        )
    elif inp.spec.sha256:
        plan.add(Local("check-image", {"path": src, "sha256": inp.spec.sha256}))
    where = describe_target(inp.target)[0]
    size = (
        f"{human(inp.image_size)} decompressed" if inp.image_size else "size known after download"
    )
    plan.add(
        Local(
            "write-image",
            {"image": src, "device": inp.device, "force": inp.force},
            # A new image file erases nothing: no confirmation, and the plan says so.
            desc=f"writes a new image file {inp.device}; image {size}"
            if inp.target.kind == "missing"
            else f"ERASES {where}; image {size}",
            destructive=inp.target.kind != "missing",
        ),
        Local(
            "verify",
            {"device": inp.device, "extract_sha256": inp.spec.extract_sha256},
            desc="read back from the medium and compare sha256",
        ),
    )
    if inp.firstboot is not None:
        if inp.firstboot.wifi is not None:
            plan.secrets.append(inp.firstboot.wifi.psk)  # masked in every rendering
        plan.add(
            Local(
                "customize",
                {
                    "device": inp.device,
                    "partition": 1,
                    **inp.firstboot.summary(),
                    "files": sorted(inp.firstboot.files()),
                },
                desc="cloud-init first boot, written into the FAT boot partition",
            )
        )
    if inp.target.kind == "missing":
        plan.note(f"{inp.device} does not exist yet: it will be created as an image file")
    if inp.spec.schematic_id:
        plan.note(f"Image Factory schematic {inp.spec.schematic_id}")
    if inp.spec.trust_on_first_use and not inp.spec.sha256:
        plan.note("no published sha256: the first download's hash is recorded in images.lock")
    if inp.os == "talos":
        plan.note(f"next: inv talos.apply --node {inp.node_id} --insecure")
    return plan
