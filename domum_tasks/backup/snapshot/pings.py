"""Push monitoring of backup jobs: healthchecks.io-style checks, ntfy and Uptime Kuma push.

The point is the dead-man's switch: a check that expects a ping every period goes down when a
run never happened (the timer stopped, the machine is off), which no alert sent *by* a run can
report. So a job pings at its start and end, and the service's schedule must match the job's.

What each service gets (their own documented push APIs):
  healthchecks  POST <url>/start after the `before` hook, POST <url> on success, POST <url>/fail
                on failure; the body is the run's log line, up to 100 kB stored
                (healthchecks.io docs, "Pinging API": /start, /fail, request body logged).
  ntfy          POST <topic url> on failure only, headers Title, Priority: high, Tags
                (ntfy docs "Publishing"; borgmatic's ntfy hook also sends only `fail` by default).
  uptime_kuma   POST <push url>?status=up|down&msg=... at the end (Uptime Kuma push monitor).

A job the `before` hook skips (exit 75) sends nothing, as borgmatic's soft failure leaves the
monitoring status alone (borgmatic 1.5.6, #292, which also moved the start ping after the
`before` hooks): if it keeps being skipped, the check's own deadline reports it.

URLs are secrets (`backup.monitor.<job>.<service>`): they are masked in plans and logs. A
ping that fails never fails the backup: it is a warning, with a short timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ...download import check_url
from ...errors import DomumError
from ...inventory.model import Inventory
from ...plan import Local, ResultOf, mask
from ..jobs import Job as BackupJob

TIMEOUT_S = 10.0
BODY_LIMIT = 100_000  # healthchecks stores the first 100 kB of a body
START, FINISH = "backup.ping-start", "backup.ping-finish"


def secret_key(job: str, service: str) -> str:
    return f"backup.monitor.{job}.{service}"


def urls(inv: Inventory, selected: list[BackupJob], secrets: Any) -> dict[str, dict[str, str]]:
    """{job: {service: url}} for the jobs' `monitor:` lists; a missing secret is bad input
    (exit 2, naming the key), a URL that is not https (or http to loopback) too."""
    out: dict[str, dict[str, str]] = {}
    for job in selected:
        for service in job.spec.monitor:
            url = str(secrets[secret_key(job.name, service)]).strip()
            check_url(url)
            out.setdefault(job.name, {})[service] = url
    return out


def start_step(job: str, services: Mapping[str, str]) -> Local | None:
    if "healthchecks" not in services:
        return None  # ntfy and Uptime Kuma have no notion of a start
    return Local(
        START,
        {"job": job, "url": services["healthchecks"].rstrip("/") + "/start"},
        desc="healthchecks /start (after `before`: a soft skip pings nothing)",
    )


def finish_step(
    job: str, services: Mapping[str, str], record_index: int, on_error: int | None
) -> Local:
    """The end-of-run pings, and the warning of an `on_error` hook that failed."""
    args: dict[str, Any] = {"job": job, "result": ResultOf(record_index), "services": {**services}}
    if on_error is not None:
        args["on_error"] = ResultOf(on_error)
    return Local(FINISH, args, desc="pings and hook warnings; never a failure of the backup")


def _kuma(url: str, status: str, msg: str) -> str:
    """Uptime Kuma's push URL with our own status and msg (any query the secret had replaced)."""
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, p.path, urlencode({"status": status, "msg": msg}), ""))


def _requests(services: Mapping[str, str], result: Mapping[str, Any], body: str) -> list[Any]:
    """(service, url, body, headers) of the finish pings for one job's run record."""
    status, job = str(result.get("status")), str(result.get("job"))
    if status == "skipped":
        return []
    ok = status == "ok"
    data = body.encode()[-BODY_LIMIT:]
    out: list[Any] = []
    if "healthchecks" in services:
        base = services["healthchecks"].rstrip("/")
        out.append(("healthchecks", base if ok else base + "/fail", data, {}))
    if "ntfy" in services and not ok:
        headers = {"Title": f"backup {job} {status}", "Priority": "high", "Tags": "warning"}
        out.append(("ntfy", services["ntfy"], data, headers))
    if "uptime_kuma" in services:
        msg = "OK" if ok else f"{status}: {result.get('message', '')}"[:200]
        kuma = _kuma(services["uptime_kuma"], "up" if ok else "down", msg)
        out.append(("uptime_kuma", kuma, b"", {}))
    return out


def send(service: str, url: str, body: bytes, headers: Mapping[str, str], secret: str) -> str:
    """One ping: "" when the service answered 2xx, else the warning to show (URL masked)."""
    from ...download import ping

    hide = [secret, url, urlsplit(secret).netloc.rpartition("@")[0]]
    try:
        code = ping(url, body, headers=dict(headers), timeout_s=TIMEOUT_S)
    except DomumError as exc:
        return mask(f"{service} ping failed: {exc}", hide)
    return "" if 200 <= code < 300 else f"{service} ping failed: HTTP {code}"


def start(args: Mapping[str, Any]) -> dict[str, str]:
    """Never fails the lane: the warning is data (a restic job's record carries it to the
    finish step) and said on stderr (seen when a vzdump job pings from the parent)."""
    import sys

    url = str(args["url"])
    warning = send("healthchecks", url, b"", {}, url.removesuffix("/start"))
    if warning:
        print(f"domum: warning: backup job {args['job']}: {warning}", file=sys.stderr)
    return {"warning": warning}


def finish(args: Mapping[str, Any], body: str) -> list[str]:
    """The end-of-run pings for a job's record; the warnings (never an error)."""
    result = args["result"].value if hasattr(args["result"], "value") else args["result"]
    services = dict(args["services"])
    warnings = []
    hook = args.get("on_error")
    if hook is not None and not hook.ok:  # the on_error Job: its one step, or killed
        inner = hook.value.get("results") or []
        why = (inner[0].stderr if inner else "") or hook.value.get("message") or "failed"
        warnings.append(f"{why.strip().splitlines()[0]}")
    for service, url, data, headers in _requests(services, result or {}, body):
        if w := send(service, url, data, headers, services[service]):
            warnings.append(w)
    return warnings
