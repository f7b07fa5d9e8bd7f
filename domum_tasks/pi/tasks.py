"""Tasks of the pi namespace, gathered from the modules that implement them."""

from invoke import Collection

from .flash import tasks as flash_tasks
from .fleet import tasks as fleet_tasks

ns = Collection("pi")
for _module in (fleet_tasks, flash_tasks):
    for _task in _module.TASKS:
        ns.add_task(_task)
