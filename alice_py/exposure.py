"""What a service listening on a public address leaves open: one warning per open door.

``open_doors(cfg)`` is a pure function of the configuration; ``server.serve`` logs each line
as a warning at start-up. On a loopback address nothing is reported: only this machine can
reach the port. ``docs/security.md`` says what to set for each door.
"""

from __future__ import annotations

import ipaddress

from alice_py.config import DEFAULT_TOKEN, Config


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or "" (every address): it may be reachable from outside


def _credential_doors(cfg: Config, where: str) -> list[str]:
    if cfg.auth.mode == "none":
        # Every API but a /chat with its own [relay] authorization_key takes no secret.
        if cfg.upstream.demo:
            return [
                f"listening on {where} with --demo and no secret: anyone who can reach this port can "
                'use the service ([auth] mode is "none"). Set a secret with --token.'
            ]
        return [
            f'[auth] mode is "none" on {where}: anyone who can reach the port can use every API '
            '(/chatgpt, /v1, /conversation, /send_message, /chat) and your API keys without a secret. '
            'Set [auth] mode to "simple" or "normal".'
        ]
    if cfg.auth.token != DEFAULT_TOKEN:
        return []
    also = "" if cfg.openai.client_keys else " It is also the client key of /v1 and the other APIs."
    return [
        f"listening on {where} with the default secret 'alice': anyone who can reach this port can "
        f"use your API keys. Set a secret with --token or [auth] token.{also}"
    ]


def open_doors(cfg: Config) -> list[str]:
    """One line per door left open, or none when the service listens on loopback only."""
    if is_loopback(cfg.server.host):
        return []
    where = f"{cfg.server.host}:{cfg.server.port}"
    doors = _credential_doors(cfg, where)
    if "*" in cfg.server.cors_origins:
        doors.append(
            "[server] cors_origins has \"*\" (CORS): any web page may call this service and read "
            "its answers. List your frontends' origins instead."
        )
    if not cfg.limits.per_client:
        doors.append(
            "no per-client limit ([limits] per_client = 0): one client can take the whole "
            f"allowance of {cfg.limits.per_minute or 'unlimited'} model calls a minute."
        )
    if not cfg.models.allowed:
        doors.append(
            "no model allow-list ([models] allowed is empty): clients may have any model "
            "called on your keys. List the models you pay for."
        )
    return doors
