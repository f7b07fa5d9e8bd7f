#!/usr/bin/env bash
# Kept for muscle memory: the real work is `inv flux.reconcile --with-source` (docs/gitops.md).
# Runs the repository's own .venv/bin/inv, so no virtualenv needs to be activated (cron, new shells).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/inv ]]; then
  echo "domum: .venv/bin/inv not found in $(pwd): run ./scripts/setup.sh first" >&2
  exit 3
fi
exec .venv/bin/inv flux.reconcile --with-source "$@"
