"""UiService: one-time login tokens for the node's web dashboard (`rnx ui`).

The token is bound to the calling certificate's role and CN (the interceptor
has already checked the certificate), so a viewer's token opens a viewer
session. The UI process verifies it with the key both read from the root.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.daemon.errors import unary
from joblet.errors import ConfigError, JobletError
from joblet.security.interceptor import get_caller
from joblet.ui.config import UiConfig, login_key_path
from joblet.ui.tokens import LOGIN_TTL_S, load_or_create_key, mint_token

Context = Any  # grpc.aio.ServicerContext
log = logging.getLogger(__name__)


class UiService(pb_grpc.UiServiceServicer):
    def __init__(self, config: UiConfig, root: Path) -> None:
        self._config = config
        self._key = load_or_create_key(login_key_path(root)) if config.enabled else b""

    @unary
    async def CreateUiLogin(
        self, request: pb.CreateUiLoginRequest, context: Context
    ) -> pb.CreateUiLoginResponse:
        if not self._config.enabled:
            raise ConfigError("the web UI is not enabled on this node (ui.enabled in its config)")
        caller = get_caller()
        if caller is None:  # the interceptor admits no call without one
            raise JobletError("no caller")
        now = time.time()
        token = mint_token(self._key, caller.role.value, caller.name, now)
        log.info("UI login token issued to %s (%s)", caller.name, caller.role.value)
        expires = datetime.fromtimestamp(now + LOGIN_TTL_S, UTC).isoformat().replace("+00:00", "Z")
        return pb.CreateUiLoginResponse(
            url=self._config.url(), token=token, role=caller.role.value, expiresAt=expires
        )
