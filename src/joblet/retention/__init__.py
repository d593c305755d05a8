"""Job retention: which finished jobs a node forgets, when, and what it
remembers of them afterwards (joblet.jobRetention)."""
