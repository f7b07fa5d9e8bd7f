#!/usr/bin/env bash
# The pinned binaries Domum and its tests run, from Debian packages (sha256-checked .deb, the
# one binary extracted into .bin/). Idempotent: a binary already there at its version is kept.
# Needs curl, sha256sum and dpkg-deb (no apt, no root): scripts/setup.sh runs it, also with
# DOMUM_SKIP_APT=1.
#   - restic 0.18.0 (Debian trixie): bookworm's 0.14 counts a live client's lock older than 30
#     minutes as stale. trixie's build needs only libc6 >= 2.34, so it runs on bookworm.
#   - promtool 2.42.0 (Debian bookworm's `prometheus` package; the server is not installed):
#     tests/test_backup_alerts.py checks the DomumBackup* alert rules with it (`promtool check
#     rules`, `promtool test rules`). Needs libc6 >= 2.34 too.
# Debian's pool keeps the current version of each suite only: when a point release replaces
# one, the download 404s and the pin (URL and sha256) is updated here, never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

RESTIC_DEB_URL=http://deb.debian.org/debian/pool/main/r/restic/restic_0.18.0-1+b4_amd64.deb
RESTIC_DEB_SHA256=4888fb20b272a28b84ac39171b7d7f0d9a58c2aeae51ec28e54684648d66e12c
PROMETHEUS_DEB_URL=http://deb.debian.org/debian/pool/main/p/prometheus/prometheus_2.42.0+ds-5+deb12u1_amd64.deb
PROMETHEUS_DEB_SHA256=81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55

# install_from_deb NAME URL SHA256 MEMBER: the .deb's MEMBER (a path inside it) as .bin/NAME
install_from_deb() {
  local name="$1" url="$2" sha="$3" member="$4" tmp
  tmp="$(mktemp -d)"
  if ! curl -fsSL -o "$tmp/pkg.deb" "$url"; then
    rm -rf "$tmp"
    echo "setup: cannot download $url; $name not installed" >&2
    exit 1
  fi
  if ! echo "$sha  $tmp/pkg.deb" | sha256sum -c --quiet -; then
    rm -rf "$tmp"
    echo "setup: $(basename "$url") sha256 mismatch (want $sha); $name not installed" >&2
    exit 1
  fi
  dpkg-deb -x "$tmp/pkg.deb" "$tmp/x"
  mkdir -p .bin
  install -m 0755 "$tmp/x/$member" ".bin/.$name.part"
  mv -f ".bin/.$name.part" ".bin/$name"
  rm -rf "$tmp"
}

if [[ "$(uname -m)" != x86_64 ]]; then
  echo "setup: no pinned restic or promtool for $(uname -m) here; run" \
    "\`inv tools.install --tool restic\` (the alert rule tests skip without promtool)" >&2
  exit 0
fi

if ! { [[ -x .bin/restic ]] && .bin/restic version 2>/dev/null | grep -q '^restic 0\.18\.0 '; }; then
  echo "setup: installing restic 0.18.0 into .bin/ (Debian trixie package, sha256-checked)"
  install_from_deb restic "$RESTIC_DEB_URL" "$RESTIC_DEB_SHA256" usr/bin/restic
fi

if ! { [[ -x .bin/promtool ]] && .bin/promtool --version 2>/dev/null | grep -q '^promtool, version 2\.42\.0+ds '; }; then
  echo "setup: installing promtool 2.42.0 into .bin/ (Debian bookworm's prometheus package, sha256-checked)"
  install_from_deb promtool "$PROMETHEUS_DEB_URL" "$PROMETHEUS_DEB_SHA256" usr/bin/promtool
  .bin/promtool --version >/dev/null  # it runs here (libc), or setup stops now
fi
