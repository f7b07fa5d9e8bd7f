"""backup.snapshot: its plan (one Job step per job), the handlers and run record, and the timer."""
