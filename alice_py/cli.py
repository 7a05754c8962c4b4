"""The ``alice-py`` command: ``serve`` (the default), ``db upgrade`` and ``chat`` (a terminal client).

Alice's Go-style flags (``-p 7777 -t alice -a=false -l 500 -d 1800 -auth normal -proxy URL
-db badger``) keep working next to the long ones, so people who ran the original can switch without
rewriting their start scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from alice_py import __version__, config
from alice_py.chat import add_chat_parser, run_chat
from alice_py.errors import ConfigError

log = logging.getLogger("alice_py")

SUBCOMMANDS = ("serve", "db", "chat", "doctor")
GO_VALUE_FLAGS = {"-p", "-t", "-l", "-d", "-auth", "-proxy", "-db"}
GO_BADGER = "badger"


def normalize_go_flags(argv: Sequence[str]) -> list[str]:
    """Go's ``flag`` package accepts ``-name=value`` and bool flags as ``-a`` / ``-a=false``;
    argparse does not, so those spellings are rewritten before parsing."""
    result: list[str] = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name == "-a":
            on = not eq or value.strip().lower() not in ("false", "0", "f", "no", "off")
            result.append("--auto-remove-keys" if on else "--no-auto-remove-keys")
        elif eq and name in GO_VALUE_FLAGS:
            result.extend([name, value])
        else:
            result.append(arg)
    return result


def ttl_seconds(text: str) -> float:
    """``-d`` / ``--ttl`` in seconds; a database URL there (``-d`` used to take one) is told about ``-db``."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (-d is the conversation lifetime, as in the Go "
            "original; the database is -db URL)"
        ) from None


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the service (the default command)")
    p.add_argument("--config", metavar="FILE", help="a TOML config file (see config.example.toml)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("-p", "--port", type=int, help="port to listen on (default 7777)")
    p.add_argument("-t", "--token", help="the shared secret for simple/normal auth (default alice)")
    p.add_argument("-auth", "--auth", choices=config.AUTH_MODES, help="auth mode (default simple)")
    p.add_argument("-l", "--limit", type=int, metavar="N", help="model calls per minute, 0 = off (500)")
    # The Go original's -d is the conversation lifetime; its database flag is only -db.
    p.add_argument(
        "-d", "--ttl", type=ttl_seconds, metavar="SECONDS", help="idle conversation lifetime (1800)"
    )
    p.add_argument("-db", "--db", metavar="URL", help="database URL (SQLite file by default)")
    p.add_argument("--base-url", metavar="URL", help="the OpenAI-compatible API base URL")
    p.add_argument("--keys-file", metavar="PATH", help="API keys, one per line (./key.txt)")
    p.add_argument("-proxy", "--proxy", metavar="URL", help="HTTP proxy for upstream requests")
    p.add_argument(
        "--auto-remove-keys",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="take keys that fail auth or quota out of the pool (on)",
    )
    p.add_argument("--compat-status", action="store_true", default=None, help="the original's status codes")
    p.add_argument("--demo", action="store_true", default=None, help="answer from the built-in demo model")
    p.add_argument(
        "--workers", type=int, metavar="N",
        help="serving processes on the one port, supervised by this one (1; more need the Redis store)",
    )  # fmt: skip
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING … (INFO)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alice-py",
        description="A self-hosted, stateful conversation service for LLM chat.",
    )
    parser.add_argument("--version", action="version", version=f"alice-py {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{serve,db,chat,doctor}")
    _serve_parser(sub)
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="apply the migrations")
    db.add_argument("--config", metavar="FILE")
    db.add_argument("-db", "--db", metavar="URL")
    add_chat_parser(sub)
    doctor = sub.add_parser("doctor", help="check the database, Redis, each upstream and key")
    doctor.add_argument("--config", metavar="FILE", help="the config file serve would use")
    doctor.add_argument("-db", "--db", metavar="URL")
    doctor.add_argument("--base-url", metavar="URL")
    doctor.add_argument("--keys-file", metavar="PATH")
    return parser


def flags_layer(args: argparse.Namespace) -> config.Layer:
    """The flags the user gave, as a config layer (flags left out do not override anything)."""
    mapping = {
        "host": ("server", "host"),
        "port": ("server", "port"),
        "token": ("auth", "token"),
        "auth": ("auth", "mode"),
        "limit": ("limits", "per_minute"),
        "ttl": ("conversations", "ttl"),
        "db": ("database", "url"),
        "base_url": ("upstream", "base_url"),
        "keys_file": ("upstream", "keys_file"),
        "proxy": ("upstream", "proxy"),
        "auto_remove_keys": ("upstream", "auto_remove_keys"),
        "compat_status": ("server", "compat_status"),
        "demo": ("upstream", "demo"),
        "workers": ("server", "workers"),
    }
    layer: config.Layer = {}
    for attr, (section, key) in mapping.items():
        value = getattr(args, attr, None)
        if value is None:
            continue
        if attr == "db" and value == GO_BADGER:
            log.warning("-db badger is the Go original's store; shares go to the default SQLite file")
            continue
        layer.setdefault(section, {})[key] = value
    return layer


def load_config(args: argparse.Namespace, environ: Mapping[str, str]) -> config.Config:
    cfg = config.load(getattr(args, "config", None), environ, flags_layer(args))
    if args.command == "serve" and not cfg.upstreams and not cfg.upstream.keys and not cfg.upstream.demo:
        raise ConfigError(config.needs_keys_message())
    return cfg


def _quiet_bad_requests(record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR and "Error handling request" in record.getMessage():
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ in ("BadHttpMessage", "BadStatusLine", "LineTooLong",
                                                      "InvalidHeader", "InvalidURLError"):
            record.levelno, record.levelname, record.exc_info = logging.DEBUG, "DEBUG", None
            return logging.getLogger("aiohttp.server").isEnabledFor(logging.DEBUG)
    return True


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    if not raw or raw[0] not in (*SUBCOMMANDS, "-h", "--help", "--version"):
        raw.insert(0, "serve")
    # The Go spellings are the server's; a chat --prompt may well hold "-a" or "-t=…".
    args = build_parser().parse_args(raw if raw[0] == "chat" else normalize_go_flags(raw))
    if args.command == "chat":
        return run_chat(args, environ)
    level = getattr(args, "log_level", "INFO")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic announces every plugin and migration step at INFO; that buries the start-up lines.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    # aiohttp logs every unparsable request (garbage bytes, port scans) at ERROR with a traceback;
    # the client already got its 400, so one line at DEBUG is enough.
    logging.getLogger("aiohttp.server").addFilter(_quiet_bad_requests)
    # Below WARNING these log SQL statements, parameters and rows, which hold upstream keys and
    # user text (SQLAlchemy starts echoing SQL as soon as its logger is at INFO).
    for name in ("aiosqlite", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    env = os.environ if environ is None else environ
    try:
        cfg = load_config(args, env)
        if cfg.server.log_format == "json":
            from alice_py.logjson import use_json_lines

            use_json_lines()
        if args.command == "doctor":
            from alice_py.doctor import doctor

            return doctor(cfg)
        if args.command == "db":
            from alice_py.db.engine import upgrade

            asyncio.run(upgrade(cfg.database.url))
            print(f"database is at the latest revision: {config.mask_url(cfg.database.url)}")
            return 0
        from alice_py.server import serve

        return serve(cfg)
    except ConfigError as exc:
        print(f"alice-py: {exc}", file=sys.stderr)
        return 2
