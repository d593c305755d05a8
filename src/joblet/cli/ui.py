"""`rnx ui`: a one-time sign-in link to the node's web dashboard.

The daemon mints the token for this client's certificate (its role and CN);
the link carries it in the URL fragment, which browsers never send or log.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from joblet.cli.commands import TOP_LEVEL
from joblet.cli.context import CommandContext
from joblet.cli.metrics import call, open_channel

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

UI_LOGIN = "/joblet.UiService/CreateUiLogin"


def login_link(answer: pb.CreateUiLoginResponse) -> str:
    return f"{answer.url.rstrip('/')}/login#{answer.token}"


def sign_in(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    with open_channel(ctx) as (channel, address):
        method = channel.unary_unary(
            UI_LOGIN,
            request_serializer=pb.CreateUiLoginRequest.SerializeToString,
            response_deserializer=pb.CreateUiLoginResponse.FromString,
        )
        answer = call(address, method, pb.CreateUiLoginRequest(), timeout=ctx.timeout_s)
    link = login_link(answer)
    if ctx.json:
        ctx.print_json(answer)
        return 0
    ctx.print(link)
    ctx.report(f"one-time {answer.role} sign-in, valid until {answer.expiresAt}")
    if ctx.args.open:
        import webbrowser

        webbrowser.open(link)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = TOP_LEVEL["ui"]
    parser.add_argument("--open", action="store_true", help="open the link in a browser")
    parser.set_defaults(handler=sign_in)
