"""Every dialect in one table: its path prefix, auth guard, error format and CORS.

Read by the pipeline (``web.dialects``); the dialect modules only add their routes.
"""

from __future__ import annotations

from alice_py.api import admin_keys, admin_shares, admin_usage, alice, node, openai, relay, sendmessage
from alice_py.api.admin_keys import AdminGuard, admin_error
from alice_py.api.dialects import ClientKeyGuard
from alice_py.api.node import NodeKeyGuard, node_error
from alice_py.api.openai_errors import openai_error
from alice_py.api.relay import relay_error, relay_guard
from alice_py.api.sendmessage import sendmessage_error
from alice_py.config import Config
from alice_py.web.auth import AliceAuth
from alice_py.web.dialects import Dialect
from alice_py.web.errors import plain_text_error


def declared_dialects(cfg: Config) -> list[Dialect]:
    client_keys = ClientKeyGuard(cfg)
    admin = AdminGuard(cfg.admin.password)
    return [
        Dialect(alice.PREFIX, plain_text_error, AliceAuth(cfg.auth), public=frozenset({alice.SHARE_ROUTE})),
        Dialect(openai.PREFIX, openai_error, client_keys),  # /v1/chat, /v1/responses, /v1/conversations
        Dialect(node.PATH, node_error, NodeKeyGuard(client_keys)),
        Dialect(relay.PATH, relay_error, relay_guard(cfg), credentialed_cors=True),
        Dialect(sendmessage.PATH, sendmessage_error, client_keys),
        Dialect(sendmessage.ACCESS_TOKEN_PATH, sendmessage_error),  # the seed's stub: open to all
        Dialect(admin_keys.PATH, admin_error, admin),
        Dialect(admin_keys.SEED_PATH, admin_error, admin),
        Dialect(admin_shares.PATH, admin_error, admin),
        Dialect(admin_usage.PATH, admin_error, admin),
    ]
