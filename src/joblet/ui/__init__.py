"""The web dashboard, `joblet ui`: a separate process and a client of the public
gRPC API only. Its web modules (aiohttp, Jinja2) come with the `ui` extra;
`config` and `tokens` use the standard library alone, so the daemon may
import them to mint login tokens."""
