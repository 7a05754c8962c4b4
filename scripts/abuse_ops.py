"""The attacks of issue 11 on operations (items 4, 7, 8, 10), each with what "held" means.

Item 8 ends with wrong admin passwords: the loopback address may then be refused admin access
for a minute, so the runner does it after every other check that logs in.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import socket
import sys
import tempfile
from http.cookies import SimpleCookie
from importlib.util import find_spec

from abuse_checks import refuses_model, unlisted_model_answers
from abuse_probe import HELD, NOT_HELD, SKIPPED, Probe, Reply, Verdict

# --- 4. start-up says what is open -------------------------------------------------------------------

DOOR_WORDS = {
    "auth none": (("auth",), ("none",)),
    "the default token": (("token", "secret"), ("default", "alice")),
    "an unprotected dialect": (("/v1", "/chat", "/conversation", "/send_message", "dialect"),),
    "CORS *": (("cors",),),
    "no per-client limit": (("per_client", "per-client"),),
    "no model allow-list": (("allowed", "allow-list", "allow list"),),
}
"""Per door, groups of words: a warning names the door when it has a word of every group."""
LISTEN_LINE = re.compile(r"starting on https?://(\[[^\]]+\]|[^:/\s]+)")


DEFAULT_TOKEN = "alice"
DIALECT_DOORS = (
    ("GET", "/v1/models"),
    ("POST", "/chat"),
    ("POST", "/conversation"),
    ("POST", "/send_message"),
)


def refused_for_auth(path: str, reply: Reply) -> bool:
    """401 (505 with ``compat_status``); ``/send_message`` answers every failure with 500."""
    if path == "/send_message":
        return reply.status == 500 and "key" in reply.text.lower()
    return reply.status in (401, 403, 505)


async def open_doors(probe: Probe) -> list[str]:
    """The doors of DOOR_WORDS this instance has open, as seen from outside."""
    doors: list[str] = []
    anonymous = await probe.request("POST", "/chatgpt/context", headers={"conversation": "probe000"})
    if not refused_for_auth("/chatgpt/context", anonymous):
        doors.append("auth none")
    else:
        default = {**probe.alice(DEFAULT_TOKEN), "conversation": "probe000"}
        if not refused_for_auth(
            "/chatgpt/context", await probe.request("POST", "/chatgpt/context", headers=default)
        ):
            doors.append("the default token")
        for method, path in DIALECT_DOORS:
            if not refused_for_auth(path, await probe.request(method, path, json={})):
                doors.append("an unprotected dialect")
                break
    if anonymous.headers.get("Access-Control-Allow-Origin") == "*":
        doors.append("CORS *")
    if not probe.opts.per_client:
        doors.append("no per-client limit")
    answers = await unlisted_model_answers(probe)
    if not all(refuses_model(path, reply) for path, reply in answers.items()):
        doors.append("no model allow-list")
    return doors


def names_door(line: str, door: str) -> bool:
    lowered = line.lower()
    return all(any(word in lowered for word in group) for group in DOOR_WORDS[door])


async def startup_warns_of_open_doors(probe: Probe) -> Verdict:
    if probe.opts.log is None:
        return SKIPPED, "pass --log FILE (the instance's log) to check its start-up warnings"
    text = probe.opts.log.read_text(encoding="utf-8", errors="replace")
    found = LISTEN_LINE.findall(text)
    if not found:
        return SKIPPED, f"no 'starting on http://HOST' line in {probe.opts.log}"
    host = found[-1].strip("[]")
    if host == "localhost" or (is_ip(host) and ipaddress.ip_address(host).is_loopback):
        return SKIPPED, f"the instance listens on {host}: warnings are for public addresses (--host 0.0.0.0)"
    warnings = [line for line in text.splitlines() if "WARNING" in line]
    doors = await open_doors(probe)
    silent = [door for door in doors if not any(names_door(line, door) for line in warnings)]
    if silent:
        return NOT_HELD, f"open on {host} without a warning: {', '.join(silent)}"
    return HELD, f"one warning per open door on {host}: {', '.join(doors) or 'none open'}"


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- 7. malformed multipart bodies ----------------------------------------------------------------------

MALFORMED = (
    (
        "unclosed",
        "multipart/form-data; boundary=abuse",
        b'--abuse\r\nContent-Disposition: form-data; name="a"\r\n\r\nb',
    ),
    ("no boundary", "multipart/form-data", b"no boundary at all"),
)


async def malformed_multipart_is_400(probe: Probe) -> Verdict:
    problems: list[str] = []
    checked: list[str] = []
    for path, headers in (("/admin/login", {}), ("/admin/logout", {}), ("/send_message", probe.bearer())):
        for what, content_type, body in MALFORMED:
            reply = await probe.request(
                "POST", path, headers={**headers, "Content-Type": content_type}, data=body
            )
            if path.startswith("/admin") and reply.status == 404:
                break  # the admin page is off: nothing there reads a body
            if reply.status == 401:
                return SKIPPED, f"{path} refused the client key (401): is --client-key right?"
            if reply.status != 400:
                problems.append(f"{path} ({what}): {reply.status}")
        else:
            checked.append(path)
    if problems:
        return NOT_HELD, "malformed multipart bodies not answered 400: " + "; ".join(problems)
    return HELD, f"malformed multipart bodies answered 400 on {', '.join(checked)}"


# --- 8. admin sessions ---------------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def session_cookie(reply: Reply) -> tuple[str, str]:
    """``(name=value, the whole Set-Cookie line)`` of the admin session cookie the reply sets."""
    for line in reply.headers.getall("Set-Cookie", []):
        cookie = SimpleCookie()
        cookie.load(line)
        for name, morsel in cookie.items():
            return f"{name}={morsel.value}", line
    return "", ""


async def log_in(probe: Probe, extra: dict[str, str]) -> tuple[str, str, str]:
    """``(cookie, its Set-Cookie line, the dashboard's CSRF token)`` after a login with the password."""
    form = await probe.request("GET", "/admin", headers=extra)
    cookie, _ = session_cookie(form)
    token = CSRF.search(form.text)
    if form.status != 200 or not token:
        raise RuntimeError(f"GET /admin answered {form.status} without a login form")
    data = {"csrf": token[1], "password": probe.opts.admin_password}
    login = await probe.request(
        "POST", "/admin/login", headers={**extra, "Cookie": cookie}, data=data, allow_redirects=False
    )
    if login.status != 303:
        raise RuntimeError(f"logging in answered {login.status}: is --admin-password right?")
    cookie, line = session_cookie(login)
    dashboard = await probe.request("GET", "/admin", headers={**extra, "Cookie": cookie})
    token = CSRF.search(dashboard.text)
    if not token:
        raise RuntimeError("the dashboard has no CSRF token")
    return cookie, line, token[1]


async def logout_revokes(probe: Probe) -> tuple[bool, str]:
    cookie, _, csrf = await log_in(probe, {})
    status = "/admin/status.json"
    before = await probe.request("GET", status, headers={"Cookie": cookie})
    out = await probe.request(
        "POST", "/admin/logout", headers={"Cookie": cookie}, data={"csrf": csrf}, allow_redirects=False
    )
    after = await probe.request("GET", status, headers={"Cookie": cookie})  # the copied cookie
    if before.status != 200 or out.status != 303:
        raise RuntimeError(f"status.json answered {before.status}, logout {out.status}")
    if after.status != 401:
        return False, f"a cookie copied before logout still works after it ({status}: {after.status})"
    return True, "a cookie copied before logout is refused after it"


async def cookie_is_secure(probe: Probe) -> tuple[bool | None, str]:
    if probe.opts.url.startswith("https:"):
        extra: dict[str, str] = {}
    elif probe.opts.trusted_proxy:
        extra = {"X-Forwarded-Proto": "https"}
    else:
        return None, "Secure not checked (plain http; pass --trusted-proxy if it trusts 127.0.0.1)"
    _, line, _ = await log_in(probe, extra)
    if "secure" not in [part.strip().lower() for part in line.split(";")]:
        return False, f"the session cookie over https is not Secure ({line.split(';', 1)[-1].strip()})"
    return True, "the session cookie over https is Secure"


async def forwarded_addresses(probe: Probe) -> tuple[bool, str]:
    """Wrong passwords from one forwarded address; then one from another."""

    def wrong(address: str) -> dict[str, str]:
        return {"Authorization": "abuse-wrong-password", "X-Forwarded-For": address}

    statuses = [
        (await probe.request("GET", "/admin/keys", headers=wrong("198.51.100.7"))).status for _ in range(8)
    ]
    if 429 not in statuses:
        return False, f"8 wrong admin passwords were never throttled ({statuses})"
    other = (await probe.request("GET", "/admin/keys", headers=wrong("198.51.100.8"))).status
    if probe.opts.trusted_proxy and other == 429:
        return False, "behind the trusted proxy, another X-Forwarded-For shares the throttled bucket"
    if not probe.opts.trusted_proxy and other != 429:
        return False, f"a spoofed X-Forwarded-For from an untrusted peer escaped the throttle ({other})"
    return True, "X-Forwarded-For counts " + (
        "per client behind the trusted proxy" if probe.opts.trusted_proxy else "only from trusted proxies"
    )


async def admin_sessions_hold(probe: Probe) -> Verdict:
    probe_off = await probe.request("GET", "/admin/keys", headers={"Authorization": "x"})
    if probe_off.status == 404:
        return SKIPPED, "the admin page and API are off ([admin] password is empty)"
    parts: list[tuple[bool | None, str]] = []
    if probe.opts.admin_password:
        parts.append(await logout_revokes(probe))
        parts.append(await cookie_is_secure(probe))
    else:
        parts.append((None, "logout and Secure not checked (pass --admin-password)"))
    parts.append(await forwarded_addresses(probe))
    detail = "; ".join(text for _, text in parts)
    if any(ok is False for ok, _ in parts):
        return NOT_HELD, detail
    return HELD, detail


# --- 10. secrets masked whole ---------------------------------------------------------------------------

PASSWORD_PARTS = ("pw1x", "leak9secret")
RAW_AT_URL = "postgresql+asyncpg://alice:pw1x@leak9secret@127.0.0.1:1/alice"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def database_password_never_shown(probe: Probe) -> Verdict:
    """Starts a short-lived ``alice-py serve`` of its own (the running one's URL is not ours to change)."""
    if find_spec("alice_py") is None:
        return SKIPPED, "alice_py is not importable here: run the script with the project's Python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALICE_") and k != "OPENAI_API_KEY"}
    args = ["-m", "alice_py", "serve", "--demo", "--host", "127.0.0.1", "--port", str(free_port())]
    with tempfile.TemporaryDirectory() as cwd:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            "--db",
            RAW_AT_URL,
            cwd=cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), 20.0)
        except TimeoutError:
            proc.kill()
            output, _ = await proc.communicate()
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    text = output.decode("utf-8", "replace")
    leaked = [part for part in PASSWORD_PARTS if part in text]
    if leaked:
        line = next(line for line in text.splitlines() if leaked[0] in line)
        return NOT_HELD, f"a database URL with a raw '@' in its password leaked {leaked[0]!r}: {line[-120:]}"
    return HELD, "a database URL with a raw '@' in its password: no part of the password in the output"
