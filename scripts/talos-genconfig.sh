#!/usr/bin/env bash
# Kept for muscle memory: the real work is `inv talos.genconfig` (see README "Talos").
cd "$(dirname "$0")/.." && exec inv talos.genconfig "$@"
