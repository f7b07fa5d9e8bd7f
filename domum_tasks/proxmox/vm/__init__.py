"""VMs: create-vm (with drift against the inventory) and destroy-vm."""
