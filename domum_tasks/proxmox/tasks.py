"""Tasks of the proxmox namespace, gathered from the modules that implement them."""

from invoke import Collection

from . import vm_tasks

ns = Collection("proxmox")
for _task in vm_tasks.TASKS:
    ns.add_task(_task)
