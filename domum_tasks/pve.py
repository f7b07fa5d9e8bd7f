"""The one Proxmox VE facade: proxmoxer with an API token, TLS verified, booleans as 1/0, tasks awaited.

Everything that talks to a PVE API goes through `PveClient`. It fixes proxmoxer's sharp edges
(the tests hold every call to the PVE API contract):

* Python booleans go out as `1`/`0` (proxmoxer would send the string 'True', which PVE rejects);
* `cluster/nextid` may be a JSON string, so `nextid()` returns `int(...)`;
* `Tasks.blocking_status` returns None on timeout and does not raise on failure, so `wait_task`
  polls the task itself and raises PveError, with the log tail, when PVE counts the exit status
  as an error: anything but `OK` and `WARNINGS: n` (a warning is shown, and the call succeeded);
* ResourceException, AuthenticationError and requests' errors become one-line PveErrors with the
  token secret masked.

proxmoxer and requests are imported lazily, inside the functions that need them.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, PveError
from .inventory.model import Inventory, ProxmoxHost
from .plan import PveCall, mask
from .run import LocalHandler, StepResult

UPID_RE = re.compile(
    r"^UPID:(?P<node>[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8,9}:"
    r"[0-9A-Fa-f]{8}:(?P<type>[^:\s/]+):(?P<id>[^:\s/]*):[^:\s/]+:$"
)
NODE_IN_PATH = re.compile(r"^/?nodes/(?P<node>[^/]+)")
VM_IN_PATH = re.compile(r"^/?nodes/(?P<node>[^/]+)/(?:qemu|lxc)/(?P<vmid>\d+)")
# PVE's words for a held guest lock: the config file lock, or a `lock:` in the config.
LOCKED_RE = re.compile(r"can't lock file|VM is locked|CT is locked")
CONNECT_TIMEOUT_S = 5.0  # an absent host fails fast (dry-runs then plan around it)
DEFAULT_TIMEOUT_S = 30.0  # per HTTP read; proxmoxer's 5 s is too short for slow calls
LOG_TAIL_LINES = 8
# pve-common src/PVE/UPID.pm status_is_error: "OK" and "WARNINGS: <n>" are success.
WARNINGS_RE = re.compile(r"^WARNINGS: \d+$")

# Deadlines for worker tasks, by the last path element of the call that started them.
TASK_DEADLINES_S = {"vzdump": 4 * 3600.0, "download-url": 1800.0, "upload": 1800.0, "clone": 1800.0}
# A create with `archive`/`restore=1` (proxmox.restore) copies whole disks back: as long as a backup.
TASK_DEADLINES_S.update({"qemu": 4 * 3600.0, "lxc": 4 * 3600.0})
DEFAULT_TASK_DEADLINE_S = 600.0


def task_base(upid: str, host_name: str = "") -> str:
    """/nodes/{node}/tasks/{upid}: a task is queried on the node its UPID names."""
    found = UPID_RE.match(upid)
    if not found:
        raise PveError(f"{host_name or 'pve'}: not a task id (UPID): {upid!r}")
    return f"/nodes/{found.group('node')}/tasks/{upid}"


def task_label(upid: str) -> str:
    """'task qmstart 196 on pve1', for messages."""
    found = UPID_RE.match(upid)
    if not found:
        return f"task {upid}"
    what = f"task {found.group('type')} {found.group('id')}".rstrip()
    return f"{what} on {found.group('node')}"


def task_deadline(step: PveCall) -> float:
    """How long to wait for the task a call starts: by its kind, and past any PVE-side timeout
    the call itself sets (a shutdown's `timeout`)."""
    leaf = step.path.rstrip("/").rsplit("/", 1)[-1]
    deadline = TASK_DEADLINES_S.get(leaf, DEFAULT_TASK_DEADLINE_S)
    own = step.params.get("timeout")
    return max(deadline, float(own) + 60.0) if isinstance(own, int | float) else deadline


class PveUnavailable(PveError):
    """The API could not be used at all: unreachable, or no token secret. Dry-runs plan around it."""


def secret_key(host_name: str) -> str:
    """The secrets key of a host's token secret; its env var is DOMUM_PROXMOX_<HOST>_TOKEN_SECRET."""
    return f"proxmox.{host_name}.token_secret"


def env_var(host_name: str) -> str:
    from .secrets.store import env_name

    return env_name(secret_key(host_name))


def token_secret(host_name: str) -> str:
    """The API token secret of an inventory Proxmox host (environment first, then SOPS)."""
    from .errors import DomumError
    from .secrets import store as secrets

    try:
        store = secrets.load()
        value = store.get(secret_key(host_name))
        why = "" if value else store.unset_reason(secret_key(host_name))
    except DomumError as exc:
        raise PveUnavailable(
            f"cannot read the token secret of Proxmox host {host_name!r}: "
            + str(exc.message).splitlines()[0],
            hint=f"set {env_var(host_name)}",
        ) from None
    if not value:
        raise PveUnavailable(
            f"no API token secret for Proxmox host {host_name!r}: {secret_key(host_name)} {why}",
            hint=f"set {env_var(host_name)}, or {secret_key(host_name)} in config/secrets.sops.yaml",
        )
    return value


def to_pve(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters as PVE wants them: booleans as 1/0, None dropped (PVE has no null)."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        out[key] = int(value) if isinstance(value, bool) else value
    return out


def host_for_path(inv: Inventory, path: str) -> str:
    """Name of the inventory Proxmox host a call goes to: by its /nodes/{node}/ part, else the only host."""
    if not inv.proxmox:
        raise ConfigError("inventory has no proxmox: hosts; add one to call the PVE API")
    found = NODE_IN_PATH.match(path)
    if found:
        for name, host in inv.proxmox.items():
            if host.node == found.group("node"):
                return name
    if len(inv.proxmox) == 1:
        return next(iter(inv.proxmox))
    nodes = ", ".join(f"{n} (node {h.node})" for n, h in inv.proxmox.items())
    raise ConfigError(f"cannot tell which Proxmox host serves {path}; hosts: {nodes}")


def warn_insecure(name: str) -> None:
    """proxmoxer silences urllib3's warning globally, so say it ourselves (once per run: a
    Session makes one client per host)."""
    print(
        f"domum: warning: proxmox.{name}.verify_tls is false: the API's certificate is "
        "not checked (set ca_file to the PVE CA instead)",
        file=sys.stderr,
    )


def _verify_setting(name: str, host: ProxmoxHost) -> bool | str:
    """requests' `verify`: a CA bundle path, True (system CAs) or False (only if verify_tls: false)."""
    if not host.verify_tls:
        return False
    if not host.ca_file:
        return True
    from . import settings

    path = Path(host.ca_file).expanduser()
    for candidate in (path, settings.repo_root() / path):
        if candidate.is_file():
            return str(candidate)
    raise ConfigError(f"proxmox.{name}.ca_file: {host.ca_file} does not exist (a PEM CA bundle)")


@dataclass
class PveClient:
    """A token-authenticated client for one inventory Proxmox host."""

    name: str
    host: ProxmoxHost
    secret: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _api: Any = field(default=None, repr=False)

    @property
    def secrets(self) -> list[str]:
        return [self.secret]

    def api(self) -> Any:
        if self._api is None:
            from proxmoxer import ProxmoxAPI

            url = urlsplit(self.host.api_url)
            if url.scheme != "https" or not url.hostname:
                raise ConfigError(
                    f"proxmox.{self.name}.api_url: {self.host.api_url!r} is not https://HOST[:PORT]"
                )
            user, _, token_name = self.host.token_id.partition("!")
            prefix = url.path.strip("/").removesuffix("api2/json").strip("/") or None
            self._api = ProxmoxAPI(
                url.hostname,
                port=url.port or 8006,
                path_prefix=prefix,
                user=user,
                token_name=token_name,
                token_value=self.secret,
                verify_ssl=_verify_setting(self.name, self.host),
                timeout=(CONNECT_TIMEOUT_S, self.timeout_s),
            )
        return self._api

    def call(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """One API call; `path` is relative to /api2/json. Returns proxmoxer's `data`."""
        resource = self.api()(path.strip("/"))
        sent = to_pve(params)
        verb = method.upper()
        try:
            if verb == "GET":
                return resource.get(**sent)
            if verb == "POST":
                return resource.post(**sent)
            if verb == "PUT":
                return resource.put(**sent)
            if verb == "DELETE":
                return resource.delete(**sent)
        except Exception as exc:
            raise self._error(verb, path, exc) from None
        raise PveError(f"internal: unsupported HTTP method {method!r}")

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params)

    def nextid(self) -> int:
        """The next free VMID; PVE (and fakepve) may send it as a string."""
        return int(self.get("/cluster/nextid"))

    def _error(self, verb: str, path: str, exc: Exception) -> PveError:
        from proxmoxer import AuthenticationError
        from proxmoxer.core import ResourceException
        from requests import exceptions as rx

        where = f"{self.name}: {verb} {path}"
        if isinstance(exc, ResourceException):
            reason = str(exc.content or exc.status_message).strip().splitlines()[0]
            if exc.errors and isinstance(exc.errors, dict):
                fields = "; ".join(
                    f"{k}: {' '.join(str(v).split())}" for k, v in sorted(exc.errors.items())
                )
                reason = f"{reason} ({fields})"
            if exc.status_code == 401:
                return PveError(
                    mask(f"{where}: 401 {reason}", self.secrets),
                    hint=f"check token {self.host.token_id} and {env_var(self.name)}",
                )
            if exc.status_code == 403:
                return PveError(
                    mask(f"{where}: 403 {reason}", self.secrets),
                    hint=f"grant token {self.host.token_id} that privilege on that path, and "
                    "its user too if the token is privilege-separated (pveum acl modify PATH "
                    "--tokens TOKEN --roles ROLE, and --users USER)",
                )
            if LOCKED_RE.search(reason):
                return PveError(
                    mask(f"{where}: {exc.status_code} {reason}", self.secrets),
                    hint=self._lock_hint(path),
                )
            return PveError(mask(f"{where}: {exc.status_code} {reason}", self.secrets))
        if isinstance(exc, AuthenticationError):
            return PveError(mask(f"{where}: authentication failed: {exc}", self.secrets))
        if isinstance(exc, rx.SSLError):
            return PveUnavailable(
                f"{where}: TLS verification failed for {self.host.api_url}",
                hint=f"pin the CA: copy /etc/pve/pve-root-ca.pem from the host, check its SHA-256 "
                "fingerprint against the GUI's (node > System > Certificates), and set "
                f"proxmox.{self.name}.ca_file to it",
            )
        if isinstance(exc, rx.ReadTimeout):
            return PveUnavailable(
                mask(f"{where}: cannot reach {self.host.api_url}: no answer within "
                     f"{self.timeout_s:g}s", self.secrets)
            )  # fmt: skip
        if isinstance(exc, rx.ConnectionError | rx.Timeout):
            return PveUnavailable(mask(f"{where}: cannot reach {self.host.api_url}", self.secrets))
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return PveError(mask(f"{where}: {type(exc).__name__}: {first}", self.secrets))

    # --- tasks ------------------------------------------------------------------------------

    def wait_task(
        self, upid: str, *, deadline_s: float = DEFAULT_TASK_DEADLINE_S, interval_s: float = 1.0
    ) -> dict[str, Any]:
        """Poll the task until it stops; raise PveError on timeout or when PVE counts its exit
        status as an error (pve-common PVE::UPID::status_is_error: all but `OK` and
        `WARNINGS: n`). A task that ended with warnings succeeded: its WARN lines are shown on
        stderr and returned as `warnings`. (The backup vzdump job judges its own tasks, and
        stricter: proxmox/vzdump.py `judge`, backup/producers/vzdump_job.py `verdict`.)"""
        status = self.wait_stopped(upid, deadline_s=deadline_s, interval_s=interval_s)
        exitstatus = str(status.get("exitstatus", ""))
        if exitstatus == "OK":
            return status
        if WARNINGS_RE.match(exitstatus):
            return {**status, "warnings": self._warn(upid, exitstatus)}
        hint = ""
        if LOCKED_RE.search(exitstatus):
            found = UPID_RE.match(upid)
            vmid = found.group("id") if found else ""
            hint = self._lock_hint(f"/nodes/{found.group('node') if found else ''}/qemu/{vmid}")
        raise PveError(
            f"{self.name}: {task_label(upid)} failed: {exitstatus or 'no exit status'}"
            + self._log_tail(upid),
            hint=hint,
        )

    def wait_stopped(
        self, upid: str, *, deadline_s: float = DEFAULT_TASK_DEADLINE_S, interval_s: float = 1.0
    ) -> dict[str, Any]:
        """Poll the task until it stops and return its final status, whatever its exitstatus.

        Raises PveError (with the log tail) when the deadline passes first: never returns a
        running task. Callers that accept "WARNINGS: n" (vzdump) judge the exitstatus themselves.
        """
        base = task_base(upid, self.name)
        deadline = self.clock() + deadline_s
        while True:
            status: dict[str, Any] = self.get(f"{base}/status") or {}
            if status.get("status") == "stopped":
                return status
            if self.clock() + interval_s > deadline:
                raise PveError(
                    f"{self.name}: {task_label(upid)} still running after {deadline_s:g}s "
                    f"(UPID {upid})" + self._log_tail(upid)
                )
            self.sleep(interval_s)

    def _warn(self, upid: str, exitstatus: str) -> list[str]:
        """Show a task's warnings (its `WARN:` log lines, else the log tail) on stderr."""
        try:
            log = [mask(line, self.secrets) for line in self.task_log(upid) if line]
        except PveError:
            log = []
        lines = [line for line in log if line.startswith("WARN")] or log[-LOG_TAIL_LINES:]
        print(
            f"domum: warning: {self.name}: {task_label(upid)} ended {exitstatus}"
            + "".join(f"\n  | {line}" for line in lines),
            file=sys.stderr,
        )
        return lines

    def permissions(self, path: str) -> dict[str, Any]:
        """The token's effective privileges on exactly `path`, as PVE computes them (a more
        specific ACL replacing inherited ones, NoAccess, pools, a privilege-separated token's
        intersection with its user): `GET /access/permissions?path=PATH` ->
        {privilege: propagate flag}. A privilege is held iff it is listed."""
        answer = self.call("GET", "/access/permissions", {"path": path}) or {}
        here = answer.get(path) if isinstance(answer, Mapping) else None
        return dict(here) if isinstance(here, Mapping) else {}

    def _lock_hint(self, path: str) -> str:
        """Who holds a VM's lock: the guest's tasks still running, from the node's task list."""
        found = VM_IN_PATH.match(path)
        if not found:
            return "another task holds the guest's lock: wait for it"
        node, vmid = found.group("node"), found.group("vmid")
        try:
            tasks = self.get(f"/nodes/{node}/tasks", vmid=vmid, source="active") or []
        except PveError:
            tasks = []
        running = [
            f"{t.get('type')} {t.get('upid')}"
            for t in tasks
            if isinstance(t, dict) and not t.get("endtime") and t.get("status") in (None, "running")
        ]
        if running:
            return f"VM {vmid} is held by: {', '.join(running)}; wait for it to end"
        return (
            f"VM {vmid} is locked but none of its tasks is running on {node}: another client "
            "may hold the lock; retry, or check the host's task list"
        )

    def task_log(self, upid: str, *, limit: int = 500) -> list[str]:
        """The task's log lines (PVE keeps them on the node named in the UPID)."""
        lines = self.get(f"{task_base(upid, self.name)}/log", start=0, limit=limit) or []
        return [str(line.get("t", "")) for line in lines if isinstance(line, dict)]

    def _log_tail(self, upid: str) -> str:
        try:
            tail = self.task_log(upid)[-LOG_TAIL_LINES:]
        except PveError:
            return ""
        return "".join(f"\n  | {mask(t, self.secrets)}" for t in tail if t)

    def run(self, step: PveCall) -> Any:
        """Make the call; if it starts a task (`wait_task`), wait for it and return its status."""
        value = self.call(step.method, step.path, step.params)
        if step.wait_task:
            if not isinstance(value, str):
                raise PveError(
                    f"{self.name}: {step.method} {step.path}: expected a task id, got {value!r}"
                )
            return self.wait_task(value, deadline_s=task_deadline(step))
        return value


def client(inv: Inventory, host_name: str | None = None, *, path: str = "") -> PveClient:
    """A new client for an inventory Proxmox host (by name, or by the call's path)."""
    name = host_name or host_for_path(inv, path)
    if name not in inv.proxmox:
        valid = ", ".join(sorted(inv.proxmox)) or "none defined"
        raise ConfigError(f"no Proxmox host {name!r} in the inventory; valid: {valid}")
    return PveClient(name, inv.proxmox[name], token_secret(name))


VM_STATE = "pve.vm-state"  # a Wait probe: the guest's status/current is `want`, or not yet


@dataclass
class Session:
    """The PVE side of one run: one client per inventory host, made when first needed, shared
    by the planner's probes and the executor's steps, and dropped with the run."""

    inventory: Inventory
    # A caller's own deadline for the tasks its calls start (a backup job's timeout).
    task_deadline_s: float | None = None
    clients: dict[str, PveClient] = field(default_factory=dict)

    def client(self, host_name: str | None = None, *, path: str = "") -> PveClient:
        name = host_name or host_for_path(self.inventory, path)
        if name not in self.clients:
            made = client(self.inventory, name)
            if not made.host.verify_tls:
                warn_insecure(name)
            self.clients[name] = made
        return self.clients[name]

    def run_step(self, step: PveCall) -> StepResult:
        """Executor hook: run one planned call on the host its path names. With
        `check=False` a refused call or a task that ends other than OK is the outcome."""
        if step.check:
            return StepResult(step, ok=True, value=self.client(path=step.path).run(step))
        try:
            pve = self.client(path=step.path)
            if not step.wait_task:
                return StepResult(
                    step, ok=True, value=pve.call(step.method, step.path, step.params)
                )
            return self._task_outcome(pve, step)
        except PveError as exc:
            first = str(exc.message).splitlines()[0]
            return StepResult(step, ok=False, stderr=first, value={"error": first})

    def _task_outcome(self, pve: PveClient, step: PveCall) -> StepResult:
        upid = pve.call(step.method, step.path, step.params)
        if not isinstance(upid, str):
            raise PveError(
                f"{pve.name}: {step.method} {step.path}: expected a task id, got {upid!r}"
            )
        deadline = self.task_deadline_s or task_deadline(step)
        status = pve.wait_stopped(upid, deadline_s=deadline)
        exitstatus = str(status.get("exitstatus") or "no exit status")
        try:
            log = pve.task_log(upid)
        except PveError:
            log = []
        ok = exitstatus == "OK"
        value = {**status, "upid": upid, "exitstatus": exitstatus, "log": log}
        return StepResult(step, ok=ok, stderr="" if ok else exitstatus, value=value)

    def vm_state(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The `pve.vm-state` probe: status/current says `want` (the executor's Wait retries
        until its deadline while this raises)."""
        path, want = str(args["path"]), str(args["want"])
        pve = self.client(path=path)
        current: dict[str, Any] = pve.get(path) or {}
        if current.get("status") == want and current.get("qmpstatus", want) in (want, None):
            return current
        now = current.get("qmpstatus") or current.get("status")
        guest = path.rsplit("/status", 1)[0].rsplit("/", 1)[-1]
        raise PveError(f"{pve.name}: VM {guest} is still {now!s}, not {want}")

    def handlers(self) -> dict[str, LocalHandler]:
        """The Local actions PVE plans use, bound to this run's clients."""
        return {VM_STATE: self.vm_state}


def run_step(inventory: Inventory, step: PveCall) -> StepResult:
    """One planned PVE call, outside a run's Session (a fresh client)."""
    return Session(inventory).run_step(step)
