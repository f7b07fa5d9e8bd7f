"""Run every probe at once, each on a thread of its own with its own deadline.

Daemon threads, not a ThreadPoolExecutor: a pool's workers are joined at interpreter exit, so a
probe stuck in a socket would hold `domum status` past its deadline. Here a probe that has not
answered by its deadline becomes a "timed out" row and its thread is left behind (its command or
socket has the same timeout, so it ends on its own soon after).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from ..errors import DomumError
from .model import Probe, Row

# Past its own timeout a probe gets this long to report its inner timeout itself (which says
# more: "timed out after 5s: talosctl ...") before the runner gives up on it.
GRACE_S = 0.5


def _first_line(text: str) -> str:
    lines = [ln.strip(" |") for ln in text.strip().splitlines() if ln.strip(" |")]
    return lines[0] if lines else ""


def _one(probe: Probe, out: dict[int, list[Row]], index: int) -> None:
    try:
        rows = probe.run(probe.timeout_s)
    except DomumError as exc:  # a tool missing, a wrong password, ...: the row says why
        rows = [Row(probe.part, probe.name, False, _first_line(str(exc)) or type(exc).__name__)]
    except Exception as exc:  # one broken probe must not hide the other parts
        rows = [Row(probe.part, probe.name, False, f"{type(exc).__name__}: {exc}")]
    out[index] = rows


def run_probes(probes: Sequence[Probe], grace_s: float = GRACE_S) -> list[Row]:
    """Every probe's rows, in the probes' order; a probe past its deadline is one row."""
    results: dict[int, list[Row]] = {}
    started = time.monotonic()
    threads = []
    for i, probe in enumerate(probes):
        name = f"status-{probe.part}-{probe.name}"
        t = threading.Thread(target=_one, args=(probe, results, i), name=name, daemon=True)
        t.start()
        threads.append(t)
    for probe, t in zip(probes, threads, strict=True):
        t.join(max(0.0, started + probe.timeout_s + grace_s - time.monotonic()))
    rows: list[Row] = []
    for i, probe in enumerate(probes):
        got = results.get(i)
        if got is None:
            reason = f"timed out after {probe.timeout_s:g}s (no answer)"
            rows.append(Row(probe.part, probe.name, False, reason))
        else:
            rows.extend(got)
    return rows
