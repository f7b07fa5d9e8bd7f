"""What every backup run shares: the single-flight lock, the state file and the metrics."""
