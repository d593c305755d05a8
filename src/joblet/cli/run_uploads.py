"""`rnx run`'s uploads: small ones inside RunJob, large ones streamed first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from joblet.client.uploads import UploadEntry, load, scan_uploads, total_size

if TYPE_CHECKING:
    import argparse

    from joblet.api import joblet_pb2 as pb
    from joblet.cli.context import CommandContext
    from joblet.client.connection import JobClient


def scan(ctx: CommandContext) -> list[UploadEntry]:
    """The uploads the flags name (stat only); what is left out is said on stderr."""

    def warn(message: str) -> None:
        print(f"rnx: warning: {message}", file=ctx.err, flush=True)

    return scan_uploads(ctx.args.upload, ctx.args.upload_dir, warn)


def run_request(
    ctx: CommandContext, client: JobClient, entries: list[UploadEntry]
) -> pb.RunJobRequest:
    """RunJob's request, its uploads sent already when they are large."""
    from joblet.cli.job_args import build_run_request
    from joblet.client.upload_stream import STREAM_THRESHOLD

    args: argparse.Namespace = ctx.args
    if total_size(entries) <= STREAM_THRESHOLD:
        return build_run_request(args, [load(entry) for entry in entries], ctx.env)
    request = build_run_request(args, [], ctx.env)
    request.uploadSession = _stream(ctx, client, entries)
    return request


def _stream(ctx: CommandContext, client: JobClient, entries: list[UploadEntry]) -> str:
    from joblet.client.progress import Progress
    from joblet.client.upload_stream import upload

    progress = Progress(total_size(entries), ctx.err) if ctx.err.isatty() else None
    try:
        return upload(client, entries, progress)
    finally:
        if progress is not None:
            progress.close()
