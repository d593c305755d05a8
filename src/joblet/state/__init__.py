"""The `state` helper: job records that survive daemon restarts.

The helper (`python -m joblet.state --config FILE`) owns a `StateBackend` and
serves the daemon over a Unix socket (joblet.state.service); the daemon talks to
it through `StateClient` (joblet.state.client), which never blocks a job.
"""
