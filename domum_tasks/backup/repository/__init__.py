"""restic repositories: the restic command line, opening targets, pruning and listing snapshots."""
