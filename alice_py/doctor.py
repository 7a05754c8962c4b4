"""``alice-py doctor``: checks what ``serve`` would need, with the same configuration sources.

The database (a SQLite file not created yet is fine: ``serve`` creates and migrates it), Redis
when the store is Redis, and each upstream: one cheap authenticated call per key
(``GET {base_url}/models``). A progress line per check as it runs, then a table with what to
fix; keys masked, URLs without their passwords. Exit status 0 only if every check passed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from alice_py.config import Config, mask_url, upstream_entries
from alice_py.errors import ConfigError
from alice_py.upstream.client import OpenAIClient
from alice_py.upstream.errors import (
    InvalidKeyError,
    QuotaExceededError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
)
from alice_py.upstream.keypool import NO_KEY_LABEL, mask_key

Print = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    ok: bool
    result: str
    fix: str = ""


async def check_database(cfg: Config) -> Check:
    from alice_py.db.engine import create_engine, is_memory_sqlite, parse_url, ping

    what = f"database {mask_url(cfg.database.url)}"
    try:
        url = parse_url(cfg.database.url)
    except ConfigError as exc:
        return Check(what, False, str(exc), "set [database] url (see config.example.toml)")
    if url.get_backend_name() == "sqlite" and not is_memory_sqlite(url) and url.database:
        missing = _missing_sqlite_file(Path(url.database))  # before create_engine, which makes it
        if missing is not None:
            return Check(what, *missing)
    try:
        engine = create_engine(cfg.database.url)
    except ConfigError as exc:
        return Check(what, False, str(exc), "fix [database] url")
    try:
        problem = await ping(engine)
    finally:
        await engine.dispose()
    if problem:
        return Check(what, False, problem, "start the database, or fix [database] url")
    return Check(what, True, "answers (serve applies any migration it lacks)")


def _missing_sqlite_file(path: Path) -> tuple[bool, str, str] | None:
    """(ok, result, fix) for a SQLite file that does not exist yet; None if it exists."""
    if path.exists():
        return None
    folder = next((parent for parent in path.parents if parent.exists()), Path("."))
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        return False, f"{folder} is not a writable folder", "make the folder writable, or fix [database] url"
    return True, "not created yet (serve creates and migrates it)", ""


async def check_redis(cfg: Config) -> Check:
    from alice_py.redis_client import REDIS_ERRORS, describe_url, open_redis

    url = cfg.conversations.redis_url
    what = f"redis {describe_url(url)}"
    client = open_redis(url)
    try:
        await client.ping()
    except REDIS_ERRORS as exc:
        return Check(what, False, f"unreachable: {exc}", "start Redis, or fix [conversations] redis_url")
    finally:
        await client.aclose()
    return Check(what, True, "answers")


def _verdict(error: UpstreamError) -> tuple[str, str]:
    """(result, what to fix) for a key whose ``/models`` call failed."""
    if isinstance(error, InvalidKeyError):
        return "invalid key (refused by the API)", "replace or remove the key"
    if isinstance(error, QuotaExceededError):
        return "quota used up", "add credit to its account, or remove the key"
    if isinstance(error, UpstreamRateLimitError):
        return "rate limited now (the key is valid)", ""
    if isinstance(error, UpstreamTimeoutError):
        return f"timed out: {error.message}", "check the base_url, the network or the proxy"
    if isinstance(error, UpstreamConnectionError):
        return f"unreachable: {error.detail}", "check the base_url, the network or the proxy"
    return f"failed: {error.detail}", "check the base_url (it should end in /v1)"


async def check_upstreams(cfg: Config, progress: Print) -> list[Check]:
    checks: list[Check] = []
    entries = upstream_entries(cfg)
    async with aiohttp.ClientSession() as session:
        for entry in entries:
            client = OpenAIClient(
                session,
                entry.base_url,
                proxy=entry.proxy or None,
                connect_timeout=entry.connect_timeout,
                timeout=min(entry.timeout, 30.0),
            )
            keys = entry.keys or (("",) if cfg.upstreams else ())
            if not keys:
                checks.append(
                    Check(
                        f"upstream {entry.name}",
                        False,
                        "no API key",
                        "put keys in key.txt, set OPENAI_API_KEY, or add [[upstreams]] with keys",
                    )
                )
                continue
            try:
                for key in keys:
                    what = (
                        f"upstream {entry.name} {entry.base_url} key {mask_key(key) if key else NO_KEY_LABEL}"
                    )
                    progress(f"checking {what} …")
                    try:
                        await client.list_models(key)
                    except UpstreamError as exc:
                        result, fix = _verdict(exc)
                        ok = isinstance(exc, UpstreamRateLimitError)
                        checks.append(Check(what, ok, result, fix))
                    else:
                        checks.append(Check(what, True, "valid"))
            finally:
                await client.close()
    return checks


async def run_checks(cfg: Config, progress: Print) -> list[Check]:
    checks: list[Check] = []
    progress(f"checking database {mask_url(cfg.database.url)} …")
    checks.append(await check_database(cfg))
    if cfg.conversations.store == "redis":
        progress("checking redis …")
        checks.append(await check_redis(cfg))
    if cfg.upstream.demo:
        checks.append(Check("upstream", True, "the built-in demo model (--demo): nothing to check"))
    else:
        checks.extend(await check_upstreams(cfg, progress))
    return checks


def table(checks: list[Check]) -> str:
    rows = [("check", "result", "what to fix")] + [
        (c.what, ("ok: " if c.ok else "PROBLEM: ") + c.result, c.fix or "-") for c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows)


def doctor(cfg: Config, out: Print = print) -> int:
    checks = asyncio.run(run_checks(cfg, out))
    out("")
    out(table(checks))
    bad = sum(1 for check in checks if not check.ok)
    out(f"{bad} problem(s) to fix" if bad else "all is well")
    return 1 if bad else 0
