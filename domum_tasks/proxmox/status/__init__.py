"""proxmox.status: hosts, guests, storage and missing inventory VMs (and the proxmox.vzdump task)."""
