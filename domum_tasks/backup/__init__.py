"""The backup namespace."""
