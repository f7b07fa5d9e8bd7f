"""The backup namespace: it has no tasks yet (the inventory's backup: section describes its jobs)."""

from invoke import Collection

ns = Collection("backup")
