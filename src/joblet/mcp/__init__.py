"""`joblet mcp`: an MCP server exposing a node's jobs as tools, with the
caller's own certificate (so the node applies its role). Needs the optional
`mcp` package: `pip install 'joblet[mcp]'`."""
