"""Runtimes: prepared read-only trees mounted into jobs at /opt/runtime."""
