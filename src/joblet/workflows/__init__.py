"""Workflows: DAGs of jobs from YAML, as pure code (parsing and validation,
requirement expressions, the executor, status aggregation, secret masking).
The daemon drives them; nothing here does I/O."""
