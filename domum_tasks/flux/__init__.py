"""The flux namespace."""
