"""The generated documentation pages: the task reference, the environment table and the
homelab's network page (generate.py writes and compares them; `python -m domum_tasks.docs`)."""
