"""Per-job metrics from cgroups and /proc, the live hub, summaries, host status."""
