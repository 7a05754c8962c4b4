"""Admin sessions under attack: a copied cookie after logout, https behind a proxy, guessing
from behind a proxy, and form bodies that are not forms."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from alice_py import appkeys
from alice_py.api.admin_keys import FailureLimiter
from tests.pages.conftest import ADMIN_PASSWORD, MakeClient
from tests.pages.test_admin_page import csrf_of, log_in, login_form
from tests.support import Clock

ADMIN = {"password": ADMIN_PASSWORD}
PROXY = {"trusted_proxies": ("127.0.0.1",)}  # the test client connects from 127.0.0.1

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

BROKEN_MULTIPART = [
    ("multipart/form-data", b"no boundary at all"),
    ("multipart/form-data; boundary=zz", b"garbage without the boundary"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nnot a header line\r\n\r\nv\r\n--zz--\r\n"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data\r\n\r\nv\r\n--zz--\r\n"),
    (
        "multipart/form-data; boundary=zz",
        b'--zz\r\nContent-Disposition: form-data; name="csrf"\r\n'
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nv\r\n--zz--\r\n",
    ),
    (
        "multipart/form-data; boundary=zz",
        b'--zz\r\nContent-Disposition: form-data; name="a"\r\n\r\n\xff\xfe\r\n--zz--\r\n',
    ),
]


async def test_logout_ends_the_session_for_a_copied_cookie_too(make_client: MakeClient) -> None:
    client = await make_client(admin=ADMIN)
    page = await log_in(client)
    stolen = client.session.cookie_jar.filter_cookies(client.make_url("/admin"))
    done = await client.post("/admin/logout", data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert done.status == 303
    # A copy of the cookie taken before the logout, sent again: it still decrypts, but its
    # session is over.
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(stolen, client.make_url("/admin"))
    assert (await client.get("/admin/status.json")).status == 401
    assert 'name="password"' in await (await client.get("/admin")).text()


async def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(make_client: MakeClient) -> None:
    behind = await make_client(admin=ADMIN, server=PROXY)
    https = await behind.get("/admin", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in https.headers["Set-Cookie"]
    plain = await behind.get("/admin", headers={"X-Forwarded-Proto": "http"})
    assert "Secure" not in plain.headers["Set-Cookie"]
    await behind.close()  # one instance per database at a time (its writer lock)
    # From a peer that is not a listed proxy the header is the client's word: ignored.
    direct = await make_client(admin=ADMIN)
    claimed = await direct.get("/admin", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in claimed.headers["Set-Cookie"]


async def test_a_secure_cookie_still_logs_in(make_client: MakeClient) -> None:
    client = await make_client(admin=ADMIN, server=PROXY)
    https = {"X-Forwarded-Proto": "https"}
    # The test client is on http: its jar would not send a Secure cookie back, so we do.
    page = await client.get("/admin", headers=https)
    cookie = page.cookies["alice_admin"].value
    response = await client.post(
        "/admin/login",
        data={"csrf": csrf_of(await page.text()), "password": ADMIN_PASSWORD},
        headers={**https, "Cookie": f"alice_admin={cookie}"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert "Secure" in response.headers["Set-Cookie"]
    session = response.cookies["alice_admin"].value
    status = await client.get("/admin/status.json", headers={**https, "Cookie": f"alice_admin={session}"})
    assert status.status == 200


def limiter(clock: Clock) -> FailureLimiter:
    return FailureLimiter(limit=2, window=60, clock=clock)


async def guess(client: object, csrf: str, forwarded_for: str) -> int:
    response = await client.post(  # type: ignore[attr-defined]
        "/admin/login",
        data={"csrf": csrf, "password": "guess"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    status: int = response.status
    return status


async def test_behind_a_trusted_proxy_each_client_has_its_own_guessing_bucket(
    make_client: MakeClient,
) -> None:
    clock = Clock()

    def setup(app: web.Application) -> None:
        app[appkeys.ADMIN_FAILURES] = limiter(clock)

    proxies = {"trusted_proxies": ("127.0.0.0/8", "10.0.0.2")}
    client = await make_client(setup=setup, admin=ADMIN, server=proxies)
    csrf = await login_form(client)
    # The attacker prepends a made-up hop; the proxies (10.0.0.2, then 127.0.0.1) append theirs.
    attacker = "198.51.100.9, 203.0.113.5, 10.0.0.2"
    assert [await guess(client, csrf, attacker) for _ in range(3)] == [401, 401, 429]
    # Another client behind the same proxy is not blocked, not even the one the attacker named.
    assert await guess(client, csrf, "198.51.100.9, 10.0.0.2") == 401
    assert await guess(client, csrf, "203.0.113.5") == 429


async def test_without_trusted_proxies_forwarded_for_is_ignored(make_client: MakeClient) -> None:
    clock = Clock()

    def setup(app: web.Application) -> None:
        app[appkeys.ADMIN_FAILURES] = limiter(clock)

    client = await make_client(setup=setup, admin=ADMIN)
    csrf = await login_form(client)
    # A client cannot escape its bucket by naming a new address each time.
    assert [await guess(client, csrf, f"203.0.113.{n}") for n in range(3)] == [401, 401, 429]


@pytest.mark.parametrize("path", ["/admin/login", "/admin/logout"])
@pytest.mark.parametrize(("content_type", "body"), BROKEN_MULTIPART)
async def test_a_broken_form_is_a_400_before_any_session_or_csrf_check(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, path: str, content_type: str, body: bytes
) -> None:
    caplog.set_level(logging.INFO)
    client = await make_client(admin=ADMIN)
    # No session and no CSRF token: a well-formed form would be a 403.
    response = await client.post(path, data=body, headers={"Content-Type": content_type})
    assert response.status == 400
    assert (await response.text()).startswith("The form body cannot be read: ")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
