"""The proxmox namespace: its tasks are not built yet (see README, "Roadmap")."""

from invoke import Collection

ns = Collection("proxmox")
