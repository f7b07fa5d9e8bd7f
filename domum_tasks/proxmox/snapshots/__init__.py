"""VM snapshots: take, list, roll back, delete."""
