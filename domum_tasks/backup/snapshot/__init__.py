"""backup.snapshot: one worker process per job, and the timer that runs it unattended."""
