"""Tasks of the talos namespace, gathered from the modules that implement them."""

from invoke import Collection

from .discover import tasks as discover_tasks
from .genconfig import tasks as config_tasks
from .ops import power_tasks
from .ops import tasks as ops_tasks

ns = Collection("talos")
for _module in (config_tasks, ops_tasks, power_tasks, discover_tasks):
    for _task in _module.TASKS:
        ns.add_task(_task)
