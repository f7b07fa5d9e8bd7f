"""Tasks of the proxmox namespace, gathered from the modules that implement them."""

from invoke import Collection

from .power import tasks as power_tasks
from .restore import tasks as restore_tasks
from .snapshots import tasks as snapshot_tasks
from .status import tasks as status_tasks
from .vm import tasks as vm_tasks

ns = Collection("proxmox")
for _module in (status_tasks, vm_tasks, power_tasks, snapshot_tasks, restore_tasks):
    for _task in _module.TASKS:
        ns.add_task(_task)
