"""`domum status`: one read-only screen of the whole homelab (Talos, etcd, Flux, Proxmox, the
Raspberry Pi OS Pis, backups).

Each part contributes probes (parts.py); the runner (runner.py) starts them all at once, each
with its own timeout, so one unreachable part costs one timeout, not the sum. A probe only
reads, through the facts/parsers its namespace already has; it never plans or writes.
"""
