"""Typed application state (aiohttp's ``web.AppKey``): no string keys, no globals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from alice_py.config import Config

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from alice_py.db.shares import ShareRepository
    from alice_py.engine.service import ConversationService
    from alice_py.store.base import ConversationStore
    from alice_py.upstream.keypool import KeyPool
    from alice_py.upstream.router import UpstreamRouter

CONFIG = web.AppKey("config", Config)
STARTED_AT = web.AppKey("started_at", float)
UPSTREAM_BASE_URL = web.AppKey("upstream_base_url", str)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
DB_ENGINE = web.AppKey("db_engine", "AsyncEngine")
SHARES = web.AppKey("shares", "ShareRepository")
KEY_POOL = web.AppKey("key_pool", "KeyPool")
ROUTER = web.AppKey("router", "UpstreamRouter")
STORE = web.AppKey("store", "ConversationStore")
SERVICE = web.AppKey("service", "ConversationService")
