#!/usr/bin/env python3
"""Replay the attacks of issue 11 against a running alice-py on loopback; say which held.

    .venv/bin/python scripts/abuse.py --url http://127.0.0.1:7777 --token alice
    .venv/bin/python scripts/abuse.py --only 2,11 --admin-password secret --log alice.log

Prints one line per item, ``HELD``, ``NOT HELD`` or ``SKIPPED`` (with why), then a summary.
Exit status: 0 only if every item held, 1 if any did not, 3 if none failed but some were
skipped, 2 for a refused target or bad arguments.

Bounded: it refuses any target that is not a loopback address (checked before anything is
sent), every loop has a fixed count, every request a timeout, and the whole run a time cap
(``--time-cap``, 55 s by default; the slow-body check runs beside the others). Where an
attack is not held, its requests reach the upstream like any client's: point it at an
instance with the demo model (``alice-py serve --demo``), never at one billing a real key.
Item 8 ends with wrong admin passwords: this address may be refused admin access for a
minute afterwards. What "held" means for each item: docs/security.md ("The abuse script")
and the checks themselves, in ``abuse_checks.py`` and ``abuse_ops.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import abuse_checks as api
import abuse_ops as ops
import aiohttp
from abuse_probe import (
    HELD,
    NOT_HELD,
    SKIPPED,
    NotLoopback,
    Options,
    Probe,
    Verdict,
    loopback_target,
    new_session,
)

Check = Callable[[Probe], Awaitable[Verdict]]

CHECKS: dict[int, tuple[str, Check]] = {
    1: ("the rate limit counts only real model calls", api.rate_limit_counts_only_real_calls),
    2: ("POST /chat is not an open relay", api.chat_is_not_an_open_relay),
    3: ("the operator chooses the models", api.models_are_the_operators_choice),
    4: ("start-up says what is open", ops.startup_warns_of_open_doors),
    5: ("size limits on what a client can make us keep", api.conversations_have_a_size_limit),
    6: ("slow bodies time out", api.slow_bodies_time_out),
    7: ("malformed multipart bodies are a 400", ops.malformed_multipart_is_400),
    8: ("admin sessions: revoked at logout, Secure, forwarded addresses", ops.admin_sessions_hold),
    9: ("security headers on pages and plain-text answers", api.pages_carry_security_headers),
    10: ("secrets masked whole", ops.database_password_never_shown),
    11: ("share links vs live conversations", api.share_links_do_not_reach_conversations),
}
BACKGROUND = (6,)
"""Long waits, run beside the others."""
ORDER = (1, 2, 3, 5, 7, 9, 10, 11, 8, 4)
"""1 first (it needs the limit untouched); 8 after every check that logs in (it ends with a lockout)."""
EXIT_ALL_HELD, EXIT_NOT_HELD, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3


async def run_check(item: int, probe: Probe, deadline: float) -> Verdict:
    """The check's verdict; running out of the time cap or an unexpected answer is a skip."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return SKIPPED, "the time cap was reached first"
    try:
        async with asyncio.timeout(remaining):
            return await CHECKS[item][1](probe)
    except TimeoutError:
        return SKIPPED, "the time cap was reached during the check"
    except aiohttp.ClientConnectionError as exc:
        return NOT_HELD, f"the service stopped answering: {exc}"
    except (aiohttp.ClientError, RuntimeError, OSError, ValueError) as exc:
        return SKIPPED, f"the check could not run: {exc}"


def report(item: int, verdict: Verdict) -> None:
    status, detail = verdict
    print(f"item {item:2d}  {status:8s}  {CHECKS[item][0]}: {detail}", flush=True)


async def run(opts: Options) -> dict[int, Verdict]:
    deadline = time.monotonic() + opts.time_cap
    wanted = [item for item in (*BACKGROUND, *ORDER) if not opts.only or item in opts.only]
    async with new_session() as session:
        probe = Probe(opts, session)
        health = await probe.request("GET", "/healthz")
        if health.status != 200:
            raise NotLoopback(f"{opts.url}/healthz answered {health.status}: is alice-py running there?")
        background = {
            item: asyncio.create_task(run_check(item, probe, deadline))
            for item in wanted
            if item in BACKGROUND
        }
        verdicts: dict[int, Verdict] = {}
        for item in wanted:
            if item not in BACKGROUND:
                verdicts[item] = await run_check(item, probe, deadline)
                report(item, verdicts[item])
        for item, task in background.items():
            verdicts[item] = await task
            report(item, verdicts[item])
    return verdicts


def exit_status(verdicts: dict[int, Verdict]) -> int:
    statuses = [status for status, _ in verdicts.values()]
    held = statuses.count(HELD)
    print(f"{held} held, {statuses.count(NOT_HELD)} not held, {statuses.count(SKIPPED)} skipped", flush=True)
    if NOT_HELD in statuses:
        return EXIT_NOT_HELD
    return EXIT_ALL_HELD if held == len(CHECKS) else EXIT_SKIPPED


def item_list(text: str) -> frozenset[int]:
    try:
        items = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of items 1 to 11, got {text!r}") from None
    if not items or not items <= CHECKS.keys():
        raise argparse.ArgumentTypeError(f"items are 1 to 11, got {text!r}")
    return items


def parser() -> argparse.ArgumentParser:
    d = Options()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=d.url, help="the instance (loopback only)")
    p.add_argument("--token", default=d.token, help="its [auth] token")
    p.add_argument("--auth", choices=("none", "simple", "normal"), default=d.auth, help="its [auth] mode")
    p.add_argument("--client-key", default="", help="a client key for /v1 and the peers (default: the token)")
    p.add_argument("--client-key2", default="", help="a second client key, for the per-client check")
    p.add_argument("--admin-password", default="", help="its [admin] password (items 8 and 11)")
    p.add_argument("--limit", type=int, default=d.limit, help="its [limits] per_minute")
    p.add_argument("--per-client", type=int, default=0, help="its [limits] per_client (0: not set)")
    p.add_argument("--max-bytes", type=int, default=d.max_bytes, help="its [conversations] max_bytes")
    p.add_argument("--max-body", type=int, default=d.max_body, help="its [server] max_body")
    p.add_argument("--body-timeout", type=float, default=d.body_timeout, help="its [server] body_timeout")
    p.add_argument("--log", type=Path, help="its log file (item 4: start-up warnings)")
    p.add_argument(
        "--trusted-proxy", action="store_true", help="it has 127.0.0.1 in [server] trusted_proxies"
    )
    p.add_argument("--probe-model", default=d.probe_model, help="a model its [models] allowed excludes")
    p.add_argument("--time-cap", type=float, default=d.time_cap, help="seconds for the whole run")
    p.add_argument("--only", type=item_list, default=frozenset(), help="items to run, e.g. 2,11")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    opts = Options(**{name: value for name, value in vars(args).items()})
    try:
        loopback_target(opts.url)
    except NotLoopback as exc:
        print(f"abuse.py: refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        verdicts = asyncio.run(run(opts))
    except NotLoopback as exc:
        print(f"abuse.py: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except aiohttp.ClientConnectionError as exc:
        print(f"abuse.py: cannot reach {opts.url}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return exit_status(verdicts)


if __name__ == "__main__":
    sys.exit(main())
