"""Tasks of the proxmox namespace, gathered from the modules that implement them."""

from invoke import Collection

from . import power_tasks, snapshot_tasks, status_tasks, vm_tasks

ns = Collection("proxmox")
for _module in (status_tasks, vm_tasks, power_tasks, snapshot_tasks):
    for _task in _module.TASKS:
        ns.add_task(_task)
