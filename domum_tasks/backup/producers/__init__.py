"""Producers: fill a job's staging directory (rsync, file sources, vzdump) over strict SSH."""
