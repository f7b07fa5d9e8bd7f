"""The talos namespace."""
