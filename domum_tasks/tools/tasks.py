"""Tasks of the tools namespace."""

from invoke import Collection

ns = Collection("tools")
