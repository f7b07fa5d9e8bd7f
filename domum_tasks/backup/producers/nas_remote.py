"""The `nas` kind: restic runs ON the NAS over SSH, where the data is (issue 16).

Mirroring whole Unraid shares onto the admin machine first needed the NAS's size again there.
Now Domum keeps its pinned restic binary on the NAS and runs it there; only restic's JSON
comes back. Pure: inventory in, argv out; snapshot/nas_run.py runs them.

- The binary: copied to `restic_path` unless `sha256sum` there already equals the local pinned
  binary's digest; a copy lands in `<path>.tmp`, is hashed on the NAS and compared with the
  local digest before the rename, so a torn or altered copy never runs. The default path is
  relative, i.e. under the NAS login's home: on Unraid /boot/config is the USB flash drive
  (FAT, mounted so nothing on it can be executed, and every rewrite wears the stick), while
  /root lives in RAM, so after a reboot the checksum misses and Domum copies it again (~30 MB).
- The password: restic reads it from its stdin when no RESTIC_PASSWORD/--password-file/
  --password-command is set and stdin is not a terminal (restic cmd/restic/global.go,
  ReadPassword: "reading repository password from stdin"). Domum writes it into the ssh
  client's stdin, which sshd hands to the remote command. So it is in no argv on either side
  (ps shows only paths and flags) and in no environment: `env -u` drops any RESTIC_PASSWORD*
  the NAS login may set, which would otherwise win over stdin.
- The repositories: restic on the NAS must reach them from the NAS. The NAS's own repository
  (`sftp:<user>@<nas>:<path>` as the admin machine sees it) is the local path <path> there; a
  `rest:` server without credentials in its URL is reached as is. Anything else (the admin
  machine's local paths, rclone:, s3:/gs:/b2:/azure: that need credentials, sftp to another
  host that needs Domum's key) is refused with the job and target named: use `copy_to`
  on the NAS target (restic copy from the admin machine) for the off-site copy.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit

from ...errors import ConfigError
from ...inventory.model import BackupTarget, Inventory
from ..jobs import Job
from .nas_session import bound
from .transport import strict_ssh, strict_ssh_text

DEFAULT_RESTIC_PATH = ".domum/bin/restic"
SNAPSHOT = "<snapshot id of the backup step>"  # filled in by backup.nas-confirm at run time
_SFTP = re.compile(r"^sftp:(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>.+)$")
# restic reads the password from stdin only when none of these is set (global.go)
_PASSWORD_VARS = ("RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND")


def restic_path(job: Job) -> str:
    return job.spec.restic_path or DEFAULT_RESTIC_PATH


def repository_on_nas(inv: Inventory, job: str, name: str, target: BackupTarget) -> str:
    """What `target` is called by a restic running on the NAS; refused when it cannot work."""
    repo = target.repository
    where = f"backup.jobs.{job}.targets: {name} ({repo})"
    nas = inv.nas
    m = _SFTP.match(repo)
    if m and nas is not None and m.group("host") in (str(nas.host), nas.hostname):
        return m.group("path")  # the NAS's own disk: a local path for restic there
    if repo.startswith("rest:"):
        if urlsplit(repo.removeprefix("rest:")).username is not None:
            raise ConfigError(
                f"{where}: a rest: URL with credentials would show them in the NAS's process "
                "list; a nas job needs a rest: server without user:password in the URL"
            )
        return repo
    raise ConfigError(
        f"{where}: cannot be reached by restic running on the NAS (a nas job runs there); "
        "valid: the NAS's own repository (sftp:<user>@<nas host>:<path>) or a rest: server. "
        "For an off-site copy set copy_to on the NAS target instead"
    )


def login(inv: Inventory) -> str:
    if inv.nas is None:
        raise ConfigError("nas: missing: a nas job needs the nas: section (host, user, shares)")
    return f"{inv.nas.user}@{inv.nas.host}"


def ssh_argv(inv: Inventory, remote: str) -> list[str]:
    """The strict ssh client running `remote` (one shell command string) on the NAS."""
    assert inv.nas is not None
    return [*strict_ssh(inv, inv.nas.ssh_port), login(inv), remote]


def restic_remote(path: str, repository: str, args: list[str]) -> str:
    """The remote command: restic from `path` with the password from stdin (see above), bound
    to the SSH session (nas_session.py: a killed job's restic gets SIGINT and unlocks)."""
    unset = [a for v in _PASSWORD_VARS for a in ("-u", v)]
    return bound(["env", *unset, path, "-r", repository, *args])


def share_paths(inv: Inventory, job: Job) -> list[str]:
    assert inv.nas is not None
    return [inv.nas.shares[s].rstrip("/") or "/" for s in job.spec.shares]


def install_args(inv: Inventory, job: Job) -> dict[str, object]:
    """The argv of each part of `backup.nas-install` (shown by --dry-run as they run)."""
    path = restic_path(job)
    q, tmp = shlex.quote(path), shlex.quote(path + ".tmp")
    parent = shlex.quote(path.rsplit("/", 1)[0]) if "/" in path else "."
    assert inv.nas is not None
    return {
        "job": job.name,
        "path": path,
        "local": "restic",  # the pinned binary, resolved like every restic Domum runs
        # architecture, then the digest of what is there ("" when nothing is)
        "probe": ssh_argv(inv, f"uname -m; sha256sum {q} 2>/dev/null || true"),
        "prepare": ssh_argv(inv, f"mkdir -p {parent} && rm -f {tmp}"),
        "copy": [
            "rsync",
            "--chmod=F700",
            "-e",
            strict_ssh_text(inv, inv.nas.ssh_port),
            "<local pinned restic>",
            f"{login(inv)}:{path}.tmp",
        ],
        "check": ssh_argv(inv, f"sha256sum {tmp}"),
        "commit": ssh_argv(inv, f"mv -f {tmp} {q}"),
    }
