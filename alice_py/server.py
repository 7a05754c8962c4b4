"""Running the app: the event loop, the listening socket, the start-up lines."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging

from aiohttp import web

from alice_py import __version__
from alice_py.app import create_app
from alice_py.config import DEFAULT_TOKEN, Config, mask_url
from alice_py.errors import ConfigError

log = logging.getLogger("alice_py")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def startup_lines(cfg: Config) -> list[str]:
    lines = [f"alice-py {__version__} starting on http://{cfg.server.host}:{cfg.server.port}"]
    if cfg.upstream.demo:
        lines.append("answers come from the built-in demo model (no API key, no network needed)")
    else:
        lines.append(f"upstream {cfg.upstream.base_url} with {len(cfg.upstream.keys)} key(s)")
    lines.append(f"auth {cfg.auth.mode}, database {mask_url(cfg.database.url)}")
    return lines


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed: its sockets and timers are several times cheaper."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(cfg: Config) -> int:
    for line in startup_lines(cfg):
        log.info("%s", line)
    if not is_loopback(cfg.server.host) and cfg.auth.mode != "none" and cfg.auth.token == DEFAULT_TOKEN:
        log.warning(
            "listening on %s with the default secret 'alice': anyone who can reach this port can "
            "use your API keys. Set a secret with --token or [auth] token.",
            cfg.server.host,
        )
    try:
        web.run_app(
            create_app(cfg),
            host=cfg.server.host,
            port=cfg.server.port,
            print=None,
            shutdown_timeout=cfg.server.drain_timeout,
            loop=new_event_loop(),
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {cfg.server.port} on {cfg.server.host} is already in use") from None
        raise ConfigError(f"cannot listen on {cfg.server.host}:{cfg.server.port}: {exc.strerror}") from None
    return 0
