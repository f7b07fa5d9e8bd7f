"""Tasks of the pi namespace, gathered from the modules that implement them."""

from invoke import Collection

from . import flash_tasks, fleet_tasks

ns = Collection("pi")
for _module in (fleet_tasks, flash_tasks):
    for _task in _module.TASKS:
        ns.add_task(_task)
