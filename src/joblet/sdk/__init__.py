"""The Python SDK: `joblet.Client` (sync), `joblet.aio.Client` (asyncio) and
`joblet.JobletClient`, the API of the reference's `joblet-sdk-python` 1.x."""
