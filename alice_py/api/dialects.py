"""Helpers shared by the peer dialects (``/v1``, ``/conversation``, ``/chat``, ``/send_message``).

- ``ClientKeyGuard``: the key-based auth of ``/v1``, ``/conversation`` and ``/send_message``.
- ``resolve_model``: a model name a client sent, as the upstream knows it (``[models] aliases``),
  if ``[models] allowed`` lets clients use it.
- ``discard_unanswered``: a conversation created for a request whose first answer failed goes
  away again, since its id never reached the client.
"""

from __future__ import annotations

import contextlib
import logging

import orjson
from aiohttp import web

from alice_py.config import Config, ModelsConfig
from alice_py.engine.allowed import check_model
from alice_py.engine.answer import Answer
from alice_py.engine.service import ConversationService
from alice_py.errors import AuthFailed, ConversationNotFound
from alice_py.web.auth import CLIENT_KEY, secret_matches

log = logging.getLogger(__name__)

MISSING_KEY = (
    "You didn't provide an API key. Send one of this service's client keys as 'Authorization: Bearer <key>'."
)
WRONG_KEY = (
    "Incorrect API key provided. Send one of this service's client keys as 'Authorization: Bearer <key>'."
)


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(value), content_type="application/json")


def authorization_value(request: web.Request) -> str:
    """The ``Authorization`` header without a ``Bearer`` scheme (the bare value is accepted too)."""
    value = request.headers.get("Authorization", "").strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    return value


def matches_any(given: str, secrets: tuple[str, ...]) -> bool:
    """Whether ``given`` is one of ``secrets``, comparing with every one (no early exit)."""
    matched = False
    for secret in secrets:
        matched |= secret_matches(given, secret)
    return matched


def client_keys(cfg: Config) -> tuple[str, ...]:
    """``[openai] client_keys``; when none are configured, the ``[auth] token`` is the one key."""
    return tuple(key for key in cfg.openai.client_keys if key) or (cfg.auth.token,)


class ClientKeyGuard:
    """``Authorization: Bearer <client key>``; any request passes with ``[auth] mode = "none"``."""

    def __init__(self, cfg: Config) -> None:
        self.open = cfg.auth.mode == "none"
        self._keys = client_keys(cfg)

    async def __call__(self, request: web.Request) -> None:
        if self.open:
            return
        given = authorization_value(request)
        if not given:
            raise AuthFailed(MISSING_KEY)
        if not matches_any(given, self._keys):
            raise AuthFailed(WRONG_KEY)
        request[CLIENT_KEY] = given


def resolve_model(models: ModelsConfig, name: str) -> str:
    """The upstream's name for ``name``: its alias target, or ``name`` itself; ``ModelNotFound``
    when ``[models] allowed`` leaves ``name`` out (the alias is checked, not its target)."""
    check_model(models, name)
    return models.aliases.get(name, name)


async def discard_unanswered(service: ConversationService, conv_id: str, answer: Answer | None) -> None:
    """Forget conversation ``conv_id``, created for this request, unless its answer completed."""
    if answer is not None and answer.text is not None:
        return
    with contextlib.suppress(ConversationNotFound):
        await service.finish(conv_id)
    log.debug("dropped new conversation %s: its first answer did not complete", conv_id)
