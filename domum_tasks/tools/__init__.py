"""The tools namespace."""
