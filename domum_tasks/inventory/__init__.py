"""The inventory: config/domum.yaml, its typed model, and the checks across its fields."""
