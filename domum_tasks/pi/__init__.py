"""The pi namespace."""
