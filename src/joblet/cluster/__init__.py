"""Daemons that share a state store and form a cluster: its name, and the
registry of its nodes (each a lease in the store)."""
