"""Secrets: the SOPS + age store and the tasks of the secrets namespace."""
