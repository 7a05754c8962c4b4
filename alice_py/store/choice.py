"""Which live store ``[conversations] store`` names, built on the app's resources."""

from __future__ import annotations

from aiohttp import web

from alice_py import appkeys
from alice_py.store.base import ConversationStore
from alice_py.store.memory import MemoryStore


def live_store(app: web.Application) -> ConversationStore:
    """The memory store, or the Redis store on the app's one Redis client (``redis_client``)."""
    conversations = app[appkeys.CONFIG].conversations
    if conversations.store == "redis":
        from alice_py.store.redis import RedisStore  # redis-py is loaded only with this store

        return RedisStore(
            app[appkeys.REDIS],
            prefix=conversations.key_prefix,
            ttl=conversations.ttl,
            max_live=conversations.max_live,
            lease=conversations.lock_lease,
        )
    return MemoryStore(conversations.ttl, conversations.max_live)
