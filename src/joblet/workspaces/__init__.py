"""Jobs' workspaces: where they live and what caps their size."""
