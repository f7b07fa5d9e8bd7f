#!/usr/bin/env bash
# Kept for muscle memory: the real work is `inv flux.reconcile` (see README "flux").
cd "$(dirname "$0")/.." && exec inv flux.reconcile --with-source "$@"
