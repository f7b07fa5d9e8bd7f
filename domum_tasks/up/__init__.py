"""`domum up`: from bare hardware to a reconciled, backed-up homelab, one resumable command.

phases.py names the phases and picks which run; state.py records the finished ones; facts.py
probes (read-only); parts.py turns probes into plans by calling the existing planners;
driver.py runs them through the one executor (taskutil.execute); tasks.py declares the task.
"""
