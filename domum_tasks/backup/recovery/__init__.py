"""Getting data back and proving it can be: restore, drill and verify."""
