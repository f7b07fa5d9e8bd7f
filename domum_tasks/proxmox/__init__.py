"""The proxmox namespace."""
