"""Glue for `inv pi.flash`: probe the facts, call the pure planner, return it with its handlers
(taskutil.plan_task prints or runs it). Every refusal the facts can show (a text file as the
image, a Raspberry Pi OS image without a FAT boot partition, an unsafe target) is raised while
planning, so the dry-run fails exactly as the real run does, before anything is written.

The write handler checks again right before opening the target (state may have changed since
the plan was made, and a downloaded image is only known once it is local).
"""

from __future__ import annotations

import json as jsonlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import progress
from ...errors import ConfigError, DomumError, Refused, VerifyError
from ...inventory.loader import load
from ...taskutil import Planned
from . import disklabel
from . import download as flash_download
from . import firstboot as flash_firstboot
from . import write as flash_write
from .facts import TargetFacts, describe_target, probe_target, refusals
from .formats import FormatError, uncompressed_size
from .image import ImageSpec, resolve_image
from .plan import FlashInput, plan_flash


@dataclass
class Session:
    """What one flash run learns as it goes (handlers share it)."""

    spec: ImageSpec
    device: str
    firstboot: flash_firstboot.FirstBoot | None
    force: bool
    show_progress: bool
    written: flash_write.WriteResult | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def protect(self, image: Path | None) -> dict[str, str | os.PathLike[str]]:
        out: dict[str, str | os.PathLike[str]] = {
            "/": "/",
            "image cache": flash_download.cache_dir(),
        }
        if image is not None and image.exists():
            out["the image"] = image
        return out

    # --- handlers (each takes the step's args) ---

    def download(self, args: Any) -> Any:
        path = flash_download.fetch(self.spec, show_progress=self.show_progress)
        self.report["image"] = str(path)
        return str(path)

    def check_image(self, args: Any) -> Any:
        return flash_download.verify_file(Path(args["path"]), self.spec)

    def write_image(self, args: Any) -> Any:
        image = Path(args["image"])
        try:
            size = uncompressed_size(image)
        except FormatError as exc:
            raise VerifyError(f"{image}: corrupt archive: {exc}") from None
        problem = disklabel.refusal(image, raspios=self.firstboot is not None, force=self.force)
        if problem:
            raise Refused(problem)
        facts = probe_target(self.device, protect=self.protect(image))
        problems = refusals(facts, image_size=size, force=self.force, image_id=_file_id(image))
        if problems:
            raise Refused("; ".join(problems))
        limit = facts.size if facts.kind == "block" else None
        self.written = flash_write.write_image(
            str(image),
            self.device,
            limit=limit,
            show_progress=self.show_progress,
            expected_sha256=self.spec.extract_sha256,
        )
        return self.written

    def verify(self, args: Any) -> Any:
        w = self.written
        if w is None:
            raise DomumError("internal: verify before write")
        got = flash_write.read_back_sha256(self.device, w.nbytes, show_progress=self.show_progress)
        if got != w.sha256:
            self._discard()
            raise VerifyError(
                f"{self.device}: READ-BACK MISMATCH: wrote sha256 {w.sha256}, read back {got}; "
                "the medium is faulty or was changed during the write: do not boot from it"
            )
        want = args.get("extract_sha256")
        if want and want != w.sha256:
            self._discard()
            raise VerifyError(
                f"{self.device}: decompressed image sha256 {w.sha256} does not match "
                f"image.extract_sha256 {want} from the inventory"
            )
        self.report.update(
            bytes=w.nbytes,
            sha256=w.sha256,
            seconds=round(w.seconds, 2),
            mib_per_s=round(w.mib_per_s, 1),
            verified=True,
        )
        return got

    def customize(self, args: Any) -> Any:
        if self.firstboot is None:
            raise DomumError("internal: customize without first-boot settings")
        files = flash_firstboot.customize(self.device, self.firstboot)
        self.report["customized"] = sorted(files)
        return files

    def _discard(self) -> None:
        if os.path.isfile(self.device):
            os.unlink(self.device)  # a bad image file must not look like a good one


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def authorized_keys(inv: Any, node: Any) -> list[str]:
    keys = [*inv.ssh.authorized_keys, *node.authorized_keys]
    if keys:
        return list(keys)
    pub = Path(os.path.expanduser(inv.ssh.key_file) + ".pub")
    return [pub.read_text().strip()] if pub.is_file() else []


def wifi_psk(inv: Any, node: Any) -> str | None:
    """The Wi-Fi PSK secret of a Raspberry Pi OS node (None without Wi-Fi); read only for a real
    write, so a dry run never decrypts it."""
    wifi = inv.raspios_for(node).wifi
    if wifi is None:
        return None
    from ...secrets.store import load as load_secrets

    return load_secrets()[wifi.psk_secret]


def plan(*, node: int | str, device: str, image: str, force: bool) -> Planned:
    """pi.flash's planner: validate, probe, plan; the same for --dry-run and the real run."""
    if node in ("", -1):
        raise ConfigError("--node N is required: the node whose image to write (e.g. --node 92)")
    if not device:
        raise ConfigError(
            "--device is required (a whole disk such as /dev/sdb, or an image file path)"
        )
    # `--device=~/x.img` and `--image=~/os.img.xz` arrive unexpanded (the shell expands `~` only
    # at the start of a word).
    device = os.path.expanduser(device)
    image = os.path.expanduser(image) if image and "://" not in image else image
    inv = load()
    n = inv.node(node)
    node = int(node)  # invoke passes it as a string; inv.node() has validated it
    spec = resolve_image(inv, node, image)
    image_path = spec.local_path(flash_download.cache_dir())
    if not spec.is_url and not image_path.is_file():  # bad input, in a dry run too
        where = "--image" if spec.origin == "--image" else f"nodes.{node}.image.url"
        raise ConfigError(f"{where} {image_path}: no such image file")
    firstboot = None
    if n.os == "raspios":
        # The Wi-Fi PSK is read in the dry-run too (masked in every rendering): a missing
        # secret fails both the same way, before anything is written.
        firstboot = flash_firstboot.from_inventory(
            inv, node, authorized_keys(inv, n), wifi_psk(inv, n)
        )
    show = progress.enabled()  # bars go to a terminal's stderr only
    session = Session(spec, device, firstboot, force, show)
    facts: TargetFacts = probe_target(device, protect=session.protect(image_path))
    if facts.kind == "missing" and device.startswith("/dev/"):  # a typo, not a safety refusal
        raise ConfigError(f"--device {device}: no such device (see `lsblk` for disks)")
    size: int | None = None
    if image_path.is_file():  # a local or cached image: refused now, as the write would
        problem = disklabel.refusal(image_path, raspios=firstboot is not None, force=force)
        if problem:
            raise Refused(problem)
        try:
            size = uncompressed_size(image_path)
        except (FormatError, OSError):
            size = None  # the download/write steps report it properly
    flash_plan = plan_flash(
        FlashInput(
            node_id=node,
            hostname=n.hostname,
            os=n.os,
            device=device,
            spec=spec,
            image_path=image_path,
            target=facts,
            image_size=size,
            image_id=_file_id(image_path),
            firstboot=firstboot,
            force=force,
            cached=spec.is_url and image_path.is_file(),
        )
    )
    for line in describe_target(facts):  # shown before the confirmation
        flash_plan.note(f"target {line.strip()}")
    registration: dict[str, Any] = {}
    if spec.origin == "image-factory":  # the factory serves image/<id> only once registered
        from ...talos.ops import schematics

        resolved, steps = schematics.use_steps(inv, [node])
        flash_plan.steps[:0] = steps
        registration = dict(schematics.handlers(resolved))
    handlers = {
        **registration,
        "download": session.download,
        "check-image": session.check_image,
        "write-image": session.write_image,
        "verify": session.verify,
        "customize": session.customize,
    }

    def report(_results: Any, json_out: bool) -> None:
        _report(session, node, device, image_path, flash_plan.notes, json_out)

    return Planned(flash_plan, inv, handlers, report=report, show_notes=True)


def _report(
    session: Session, node: int, device: str, image: Path, notes: list[str], json_out: bool
) -> None:
    report = {"node": node, "device": device, "image": str(image), **session.report}
    nxt = next((x[6:] for x in notes if x.startswith("next: ")), "")
    if nxt:
        report["next"] = nxt
    if json_out:
        print(jsonlib.dumps(report, indent=2))
        return
    print(
        f"wrote {report['bytes']} bytes to {device} in {report['seconds']}s "
        f"({report['mib_per_s']} MiB/s), read back and verified: sha256 {report['sha256']}"
    )
    if "customized" in report:
        print(f"first boot: {', '.join(report['customized'])} written to the boot partition")
    if nxt:
        print(f"next: {nxt}")
