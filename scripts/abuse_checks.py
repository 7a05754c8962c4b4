"""The attacks of issue 11 on the API (items 1, 2, 3, 5, 6, 9, 11), each with what "held" means.

Each check returns ``(HELD | NOT HELD | SKIPPED, what was seen)``. Loops are bounded by the
options (``--limit``, ``--per-client``) or by small constants; nothing here waits longer than
``--body-timeout`` plus a few seconds.
"""

from __future__ import annotations

import asyncio
import time

from abuse_probe import (
    HELD,
    MESSAGES,
    NOT_HELD,
    PROBE_ORIGIN,
    SKIPPED,
    Probe,
    Reply,
    Verdict,
    cors_grants_credentials,
    describe,
    flood,
)
from abuse_v1 import v1_conversation_held

MAX_FLOOD = 2000
SLOW_SOCKETS = 5
SLOW_GRACE = 5.0
"""Seconds past ``--body-timeout`` a slow body may still be open before it counts as not held."""


async def real_call(probe: Probe) -> Reply:
    """One model call on the Alice API (a different dialect from the floods on ``/chat``)."""
    body = {"question": "hi", "stream": False}
    return await probe.request("POST", "/chatgpt/quickAnswer", headers=probe.alice(), json=body)


async def v1_call(probe: Probe, key: str | None = None, *, other_address: bool = False) -> Reply:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    session = probe.other_address() if other_address else None
    if other_address and session is None:
        raise RuntimeError("no second loopback address for an IPv6 target")
    try:
        return await probe.request(
            "POST", "/v1/chat/completions", headers=probe.bearer(key), json=body, session=session
        )
    finally:
        if session is not None:
            await session.close()


# --- 1. the rate limit counts only real model calls ------------------------------------------------


async def rate_limit_counts_only_real_calls(probe: Probe) -> Verdict:
    limit = probe.opts.limit
    if limit == 0:
        return SKIPPED, "the instance has no global limit (--limit 0): there is nothing to use up"
    if limit > MAX_FLOOD:
        return SKIPPED, f"--limit {limit} is more than this script floods ({MAX_FLOOD}) within its time cap"
    json_type = {"Content-Type": "application/json"}
    for who, headers in (("unauthenticated", json_type), ("authenticated", {**json_type, **probe.bearer()})):
        statuses = await flood(limit, lambda h=headers: probe.request("POST", "/chat", headers=h, data=b"{"))
        reply = await real_call(probe)
        if reply.status == 429:
            return NOT_HELD, (
                f"{limit} {who} POST /chat with body '{{' ({describe(statuses)}) used up "
                "[limits] per_minute: a real call on /chatgpt then got 429 (and will for a minute)"
            )
        if reply.status != 200:
            return SKIPPED, f"a real call answered {reply.status}: are --token and --auth right?"
    ok, detail = await per_client_part(probe)
    seen = f"2×{limit} refused requests on /chat did not use up the limit of {limit}; {detail}"
    return (HELD if ok else NOT_HELD), seen


async def per_client_part(probe: Probe) -> tuple[bool, str]:
    """With ``--per-client N``: one client's N+1 calls meet a 429, another client's call doesn't."""
    n, limit = probe.opts.per_client, probe.opts.limit
    if not n:
        return True, "per-client limit not checked (pass --per-client N when [limits] per_client = N)"
    if limit and limit < n + 4:
        return True, f"per-client limit not checked: --limit {limit} leaves no room above --per-client {n}"
    statuses = [(await v1_call(probe)).status for _ in range(n + 1)]
    if 401 in statuses:
        return True, "per-client limit not checked: /v1 refused the client key (is --client-key right?)"
    if 429 not in statuses:
        return False, f"{n + 1} calls from one client were all let through ({statuses}): no per-client limit"
    other = await v1_call(probe, probe.opts.client_key2 or None, other_address=True)
    if other.status == 429:
        return False, "another client (another key or address) got 429 too: one client took the allowance"
    return True, f"one client met 429 within {n + 1} calls, another client was answered {other.status}"


# --- 2. POST /chat is not an open relay -------------------------------------------------------------


async def chat_is_not_an_open_relay(probe: Probe) -> Verdict:
    body = {"messages": MESSAGES}
    anonymous = await probe.request("POST", "/chat", json=body, headers={"Origin": "null"})
    seen: list[str] = []
    if anonymous.status < 400:
        if probe.opts.auth != "none":
            return NOT_HELD, f"an anonymous POST /chat was answered ({anonymous.status}): an open relay"
        seen.append("anonymous /chat answered: open on purpose (--auth none)")
    else:
        seen.append(f"anonymous POST /chat refused ({anonymous.status})")
    for origin in ("null", PROBE_ORIGIN):
        preflight_headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        preflight = await probe.request("OPTIONS", "/chat", headers=preflight_headers)
        answer = await probe.request("POST", "/chat", json=body, headers={"Origin": origin})
        for name, reply in (("preflight", preflight), ("answer", answer)):
            if cors_grants_credentials(reply.headers, origin):
                allowed = reply.headers.get("Access-Control-Allow-Origin")
                return NOT_HELD, f"the {name} for Origin {origin} allows credentials (Allow-Origin {allowed})"
    seen.append("no credentialed CORS for Origin null or an unlisted origin")
    return HELD, "; ".join(seen)


# --- 3. the operator chooses the models --------------------------------------------------------------


async def unlisted_model_answers(probe: Probe) -> dict[str, Reply]:
    model = probe.opts.probe_model
    return {
        "/v1/chat/completions": await probe.request(
            "POST",
            "/v1/chat/completions",
            headers=probe.bearer(),
            json={"model": model, "messages": MESSAGES},
        ),
        "/chat": await probe.request(
            "POST", "/chat", headers=probe.bearer(), json={"model": model, "messages": MESSAGES}
        ),
        "/send_message": await probe.request(
            "POST", "/send_message", headers=probe.bearer(), data={"prompt": "hi", "model": model}
        ),
    }


def v1_code(reply: Reply) -> str:
    body = reply.json()
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) else ""


def refuses_model(path: str, reply: Reply) -> bool:
    """404 (``/v1``: code ``model_not_found``); ``/send_message`` answers every failure with
    500 and a message, as its seed did, so there the message must be about the model."""
    if path == "/send_message":
        return reply.status in (404, 500) and "model" in reply.text.lower()
    if path.startswith("/v1"):
        return reply.status == 404 and v1_code(reply) == "model_not_found"
    return reply.status == 404


def rate_limited(*replies: Reply) -> Verdict | None:
    if any(reply.status == 429 for reply in replies):
        return (
            SKIPPED,
            "the service answered 429 (item 1's flood, or the global limit): rerun on a fresh instance",
        )
    return None


async def models_are_the_operators_choice(probe: Probe) -> Verdict:
    answers = await unlisted_model_answers(probe)
    if any(reply.status == 401 for reply in answers.values()):
        return SKIPPED, "a request with --client-key was refused (401): is the client key right?"
    if limited := rate_limited(*answers.values()):
        return limited
    through = [f"{path} {reply.status}" for path, reply in answers.items() if not refuses_model(path, reply)]
    if through:
        return NOT_HELD, (
            f"model {probe.opts.probe_model!r} was not refused as unknown ({', '.join(through)}): "
            "no [models] allowed, or it lets this name through"
        )
    return HELD, f"model {probe.opts.probe_model!r} refused: 404 model_not_found on /v1, /chat, /send_message"


# --- 5. size limits on what a client can make us keep -----------------------------------------------


async def conversations_have_a_size_limit(probe: Probe) -> Verdict:
    max_bytes, max_body = probe.opts.max_bytes, probe.opts.max_body
    part = min(max_bytes * 6 // 10, max_body - 4096)
    if part <= 0 or 2 * part <= max_bytes:
        return SKIPPED, "--max-body is too small to pass --max-bytes in two requests"
    created = await probe.request(
        "POST", "/chatgpt/createTurbo", headers=probe.alice(), json={"prompt": "a" * part}
    )
    if created.status != 200:
        return SKIPPED, f"creating a conversation with a {part}-byte prompt answered {created.status}"
    conv = {"conversation": created.text}
    try:
        asked = await probe.request(
            "POST", "/chatgpt/chat", headers={**probe.alice(), **conv}, data=b"b" * part
        )
    finally:
        await probe.request("POST", "/chatgpt/finish", headers={**probe.alice(), **conv})
    if limited := rate_limited(created, asked):
        return limited
    if asked.status != 413 or not asked.text.strip():
        return NOT_HELD, (
            f"a {part}-byte question on a {part}-byte prompt (over {max_bytes} bytes) "
            f"answered {asked.status}, not 413 with a message"
        )
    seen = f"a question taking a conversation past {max_bytes} bytes: 413 {asked.text[:80]!r}"
    if max_body > max_bytes + 4096:
        big = await probe.request(
            "POST", "/chatgpt/createTurbo", headers=probe.alice(), json={"prompt": "a" * (max_bytes + 1)}
        )
        if big.status != 413:
            return NOT_HELD, f"creating with a prompt over {max_bytes} bytes answered {big.status}, not 413"
        seen += "; a prompt over it: 413"
    held, v1_seen = await v1_conversation_held(probe, part, max_bytes)
    return (HELD if held else NOT_HELD), f"{seen}; {v1_seen}"


# --- 6. slow bodies time out ------------------------------------------------------------------------


async def slow_bodies_time_out(probe: Probe) -> Verdict:
    limit = probe.opts.body_timeout + SLOW_GRACE
    if limit > probe.opts.time_cap:
        return SKIPPED, f"--body-timeout {probe.opts.body_timeout} s does not fit in the time cap"
    started = time.monotonic()
    outcomes = await asyncio.gather(*(trickle(probe, started + limit) for _ in range(SLOW_SOCKETS)))
    took = time.monotonic() - started
    bad = [outcome for outcome in outcomes if outcome != "408, closed"]
    if bad:
        return (
            NOT_HELD,
            f"{len(bad)} of {SLOW_SOCKETS} bodies sent a byte a second: {bad[0]} after {took:.0f} s",
        )
    return HELD, f"{SLOW_SOCKETS} bodies sent a byte a second all got 408 and were closed within {took:.0f} s"


async def trickle(probe: Probe, deadline: float) -> str:
    """One request whose body comes a byte a second: what the service did about it."""
    reader, writer = await asyncio.open_connection(probe.host, probe.port, ssl=probe.tls)
    head = ["POST /chatgpt/chat HTTP/1.1", f"Host: {probe.host}:{probe.port}", "Content-Length: 100000"]
    head += [f"{name}: {value}" for name, value in probe.alice().items()]
    try:
        writer.write("\r\n".join([*head, "Content-Type: text/plain", "", ""]).encode())
        while time.monotonic() < deadline:
            data = await read_within(reader, 1.0)
            if data is not None:
                return await answered(reader, data)
            try:
                writer.write(b"a")
                await writer.drain()
            except (ConnectionError, OSError):
                return await answered(reader, await read_within(reader, 1.0) or b"")
        return "still open"
    finally:
        writer.close()


async def read_within(reader: asyncio.StreamReader, seconds: float) -> bytes | None:
    """What arrives within ``seconds`` (``b""``: the connection closed), ``None`` for nothing."""
    try:
        return await asyncio.wait_for(reader.read(4096), seconds)
    except TimeoutError:
        return None
    except (ConnectionError, OSError):
        return b""


async def answered(reader: asyncio.StreamReader, data: bytes) -> str:
    if not data:
        return "closed without an answer"
    status = data.split(b"\r\n", 1)[0].decode("latin-1")
    if not status.startswith("HTTP/1.1 408"):
        return f"answered {status!r}"
    return "408, closed" if await closed_soon(reader) else "408, but the connection stayed open"


async def closed_soon(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(3.0):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except (ConnectionError, OSError):
        pass
    return True


# --- 9. security headers ------------------------------------------------------------------------------


PAGE_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}


def header_problems(where: str, reply: Reply, wanted: dict[str, str]) -> list[str]:
    problems = [
        f"{where}: {name} is {reply.headers.get(name)!r}, not {value!r}"
        for name, value in wanted.items()
        if reply.headers.get(name, "").lower() != value.lower()
    ]
    return problems


def csp_problems(where: str, reply: Reply) -> list[str]:
    csp = reply.headers.get("Content-Security-Policy", "")
    return [] if "frame-ancestors 'none'" in csp else [f"{where}: no HTTP CSP with frame-ancestors 'none'"]


async def pages_carry_security_headers(probe: Probe) -> Verdict:
    share_id = await make_share(probe)
    html = {"Accept": "text/html"}
    share = await probe.request("GET", f"/chatgpt/share/{share_id}", headers=html)
    problems = csp_problems("share page", share)
    problems += header_problems("share page", share, {**PAGE_HEADERS, "Referrer-Policy": "no-referrer"})
    playground = await probe.request("GET", "/", headers=html)
    problems += csp_problems("playground", playground) + header_problems(
        "playground", playground, PAGE_HEADERS
    )
    admin = await probe.request("GET", "/admin", headers=html)
    problems += csp_problems("admin page", admin) + header_problems("admin page", admin, PAGE_HEADERS)
    errors = [
        await probe.request("GET", "/chatgpt/share/<script>x", headers=html),
        await probe.request("POST", "/chatgpt/context", headers=probe.alice()),  # no conversation: 400
    ]
    for reply in errors:
        problems += header_problems(
            f"plain-text {reply.status}", reply, {"X-Content-Type-Options": "nosniff"}
        )
    if problems:
        return NOT_HELD, "; ".join(problems)
    return (
        HELD,
        "share page: CSP frame-ancestors 'none', nosniff, DENY, no-referrer; pages and errors: nosniff",
    )


async def make_share(probe: Probe) -> str:
    """A share of a new empty conversation (no model call); its id as the answer names it."""
    created = await probe.request("POST", "/chatgpt/createTurbo", headers=probe.alice())
    if created.status != 200:
        raise RuntimeError(
            f"creating a conversation answered {created.status}: are --token and --auth right?"
        )
    conv = {"conversation": created.text}
    stored = await probe.request("POST", "/chatgpt/store", headers={**probe.alice(), **conv})
    await probe.request("POST", "/chatgpt/finish", headers={**probe.alice(), **conv})
    if stored.status != 200:
        raise RuntimeError(f"storing a share answered {stored.status}")
    return stored.headers.get("Share-Id", created.text)


# --- 11. share links vs live conversations ------------------------------------------------------------


async def share_links_do_not_reach_conversations(probe: Probe) -> Verdict:
    created = await probe.request("POST", "/chatgpt/createTurbo", headers=probe.alice())
    if created.status != 200:
        return SKIPPED, f"creating a conversation answered {created.status}: are --token and --auth right?"
    conv_id = created.text
    headers = {**probe.alice(), "conversation": conv_id, "Accept": "application/json"}
    stored = await probe.request("POST", "/chatgpt/store", headers=headers)
    answer = stored.json()
    share_id = str(answer.get("id", conv_id)) if isinstance(answer, dict) else conv_id
    reached = [
        route
        for route in ("context", "finish")
        if (
            await probe.request(
                "POST", f"/chatgpt/{route}", headers={**probe.alice(), "conversation": share_id}
            )
        ).status
        == 200
    ]
    await probe.request("POST", "/chatgpt/finish", headers={**probe.alice(), "conversation": conv_id})
    if reached:
        return NOT_HELD, (
            f"the share link's id reached the live conversation ({', '.join(reached)} answered 200): "
            "[shares] separate_ids is off (the original's way, documented in docs/security.md)"
        )
    shown = await probe.request("GET", f"/chatgpt/share/{share_id}")
    page = await probe.request("GET", f"/chatgpt/share/{share_id}", headers={"Accept": "text/html"})
    if conv_id in shown.text or conv_id in page.text:
        return NOT_HELD, "the share's JSON or page shows the conversation's id"
    return await revoke_part(probe, share_id)


async def revoke_part(probe: Probe, share_id: str) -> Verdict:
    seen = "the share link reaches no live conversation and shows only the share's id"
    if not probe.opts.admin_password:
        return HELD, f"{seen}; listing and revoking not checked (pass --admin-password)"
    admin = {"Authorization": probe.opts.admin_password}
    listed = await probe.request("GET", "/admin/shares?limit=1000", headers=admin)
    ids = {share.get("id") for share in (listed.json() or {}).get("shares", [])}
    if listed.status != 200 or share_id not in ids:
        return NOT_HELD, f"GET /admin/shares answered {listed.status} without the new share"
    revoked = await probe.request("DELETE", f"/admin/shares/{share_id}", headers=admin)
    after = await probe.request("GET", f"/chatgpt/share/{share_id}")
    if revoked.status != 200 or after.status != 404:
        return NOT_HELD, f"revoking answered {revoked.status}; the link then answered {after.status}, not 404"
    return HELD, f"{seen}; /admin/shares lists it and revoking makes the link 404"
