"""node-chatgpt-api's request fields besides the message: the ids a client chose, ``clientOptions``.

Ids: node's own client makes every ``conversationId`` (a uuid) and the server keeps a
conversation under whatever id it is sent. Here an id a client sends is 1 to 64 letters,
digits, ``-`` or ``_`` (a uuid, a shortuuid, a number): it becomes a store key, a database
key and a log word, so it is bounded, and nothing in it can split a key or a log line.
A number is taken as its digits (node calls ``toString()``); ``""``, ``0`` and ``false`` count
as absent, as they do in node's ``body.conversationId ? … : undefined``.

``clientOptions`` follow node's server (``filterClientOptions`` in its ``bin/server.js``):
with no whitelist (``[node] client_options`` empty, node's ``perMessageClientOptionsWhitelist``
unset) they are ignored; otherwise only the listed names are taken, ``modelOptions.<field>``
taking one field of ``modelOptions``. What is taken applies to this message's request only,
since node builds a fresh client for each request.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alice_py.api.dialects import resolve_model
from alice_py.config import ModelsConfig, NodeConfig
from alice_py.errors import BadRequest

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID_RULE = "1 to 64 letters, digits, '-' or '_'"
LABEL_OPTIONS = (
    ("promptPrefix", "prompt_prefix"),
    ("userLabel", "user_label"),
    ("chatGptLabel", "chatgpt_label"),
)
"""clientOptions names, and the ``[node]`` setting each one replaces for a message."""
NODE_DEFAULTS = NodeConfig()


def client_id(data: Mapping[str, Any], name: str) -> str | None:
    """``data[name]`` as an id, ``None`` when absent; ``BadRequest`` for one outside the rule."""
    value = data.get(name)
    if value is None or value == "" or value is False or value == 0:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not CLIENT_ID.fullmatch(value):
        raise BadRequest(f'"{name}" must be {ID_RULE}')
    return value


@dataclass(frozen=True, slots=True)
class MessageOptions:
    """What a message's ``clientOptions`` change: the ``[node]`` settings for it, and extra
    fields of its upstream request (node's ``modelOptions``)."""

    settings: NodeConfig | None = None
    """The settings with this message's prompt and labels; ``None`` when it sent none."""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def allowed_options(given: Mapping[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    """node's filter: a listed name is taken whole; of an object that is not listed, the
    fields listed as ``name.field``."""
    taken: dict[str, Any] = {}
    for name, value in given.items():
        if name in allowed:
            taken[name] = value
        elif isinstance(value, dict):
            fields = {key: item for key, item in value.items() if f"{name}.{key}" in allowed}
            if fields:
                taken[name] = fields
    return taken


def message_options(data: Mapping[str, Any], cfg: NodeConfig, models: ModelsConfig) -> MessageOptions:
    """The ``clientOptions`` of a request, as far as ``[node] client_options`` allows them."""
    given = data.get("clientOptions")
    if not cfg.client_options or given is None:
        return MessageOptions()
    if not isinstance(given, dict):
        raise BadRequest('"clientOptions" must be an object')
    taken = allowed_options(given, cfg.client_options)
    changes: dict[str, Any] = {}
    for option, setting in LABEL_OPTIONS:
        if option in taken:
            value = taken[option]
            if not isinstance(value, str):
                raise BadRequest(f'"clientOptions.{option}" must be a string')
            # An empty one means node's default (its ``userLabel || 'User'``), not the setting.
            changes[setting] = value or getattr(NODE_DEFAULTS, setting)
    return MessageOptions(
        settings=dataclasses.replace(cfg, **changes) if changes else None,
        params=_model_options(taken.get("modelOptions"), models),
    )


def _model_options(value: Any, models: ModelsConfig) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest('"clientOptions.modelOptions" must be an object')
    params = dict(value)
    if "model" in params:
        model = params["model"]
        if not isinstance(model, str) or not model:
            raise BadRequest('"clientOptions.modelOptions.model" must be a model name')
        params["model"] = resolve_model(models, model)
    return params
