"""proxmox.restore: a VM or container back from a vzdump archive."""
