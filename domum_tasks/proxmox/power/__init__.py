"""Power actions of VMs: start, stop, shutdown, reboot."""
