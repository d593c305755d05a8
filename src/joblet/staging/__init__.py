"""Upload sessions: files streamed to the node in chunks before the RunJob
that uses them, kept in a staging directory under the root."""
