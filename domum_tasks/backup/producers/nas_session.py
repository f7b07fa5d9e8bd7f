"""restic on the NAS lives no longer than the SSH session that started it.

Why a wrapper: sshd signals nothing to a command run without a terminal when its client goes
(a `kill -9` of Domum, a timeout, a power cut here), so restic would run on, holding its lock.
Waiting for restic's next write to the dead channel does not help either: Go ends a program
whose write to fd 1/2 hits a closed pipe with SIGPIPE at once (runtime sigpipe/dieFromSignal),
before restic's cleanup, so its lock stays in the repository. restic removes its lock only
when it gets SIGINT or SIGTERM: restic 0.18.0 cmd/restic/cleanup.go, createGlobalContext
(signal.Notify for SIGINT and SIGTERM cancels the global context). SIGHUP, what a terminal's
hangup would send (ssh -t), does nothing: restic ignores it (internal/restic/lock.go, init),
because other clients probe a lock holder's liveness with it (lock_unix.go, processExists).

So the remote command is a small POSIX sh wrapper (`bound`):
- restic's stdin is the channel (it reads the password there, see nas_remote.py); its stdout
  and stderr go to files in a private temp dir on the NAS and are sent back when it ends, so
  restic itself never writes to the channel and no SIGPIPE can cut its cleanup short;
- a watcher polls, every second, whether the sshd session process (the wrapper's parent) is
  still there; once the session is gone it sends restic SIGINT (it removes its lock and
  stops), then SIGTERM after INT_GRACE_S, SIGKILL after twice that;
- the wrapper exits with restic's exit code, so Domum reads the result as before.
The restic argv comes after the script as "$@": nothing of it is parsed by a shell twice.
"""

from __future__ import annotations

import shlex

INT_GRACE_S = 30  # as run/jobs.py gives a local restic: finish the upload in flight, unlock

_SCRIPT = """\
p=$PPID
d=$(mktemp -d "${TMPDIR:-/tmp}/domum-restic.XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT
exec 3<&0
"$@" <&3 >"$d/out" 2>"$d/err" 3<&- &
r=$!
exec 3<&-
(
  while kill -0 "$r" 2>/dev/null; do
    if ! kill -0 "$p" 2>/dev/null; then
      kill -INT "$r" 2>/dev/null
      i=0
      while kill -0 "$r" 2>/dev/null; do
        i=$((i+1))
        [ "$i" -eq GRACE ] && kill -TERM "$r" 2>/dev/null
        [ "$i" -ge $((2*GRACE)) ] && kill -KILL "$r" 2>/dev/null
        sleep 1
      done
      exit 0
    fi
    sleep 1
  done
) </dev/null >/dev/null 2>&1 &
w=$!
wait "$r"
rc=$?
kill "$w" 2>/dev/null
cat "$d/out"
cat "$d/err" >&2
exit "$rc"
""".replace("GRACE", str(INT_GRACE_S))


def bound(argv: list[str]) -> str:
    """The remote command running `argv` (restic and its arguments) tied to the session."""
    return shlex.join(["exec", "sh", "-c", _SCRIPT, "domum-restic", *argv])
