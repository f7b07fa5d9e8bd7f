"""Tasks of the secrets namespace."""

from invoke import Collection

ns = Collection("secrets")
