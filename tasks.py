"""Entry point for `inv`: it only composes the namespaces that live in domum_tasks."""

from domum_tasks import ns

__all__ = ["ns"]
