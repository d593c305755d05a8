"""NVIDIA GPUs: discovery (inventory), allocation (table, strategies), and
what a GPU job is given (device rules, /dev nodes, environment)."""
