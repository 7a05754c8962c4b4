"""The admin page over HTTP: off without a password, login with CSRF-checked forms, an encrypted
session cookie, a limit on guessing, the key pool with masked keys, logout."""

from __future__ import annotations

import base64
import re

import pytest
from aiohttp import web

from alice_py import appkeys
from alice_py.api.admin_keys import FailureLimiter
from alice_py.errors import ConfigError
from alice_py.upstream.shared_keys import key_id
from tests.pages.conftest import ADMIN_PASSWORD, UPSTREAM_KEY, Client, MakeClient
from tests.support import Clock

ADMIN = {"password": ADMIN_PASSWORD}
SECRET = base64.urlsafe_b64encode(b"k" * 32).decode()

# aiohttp-session keeps its state under string request keys, which aiohttp now frowns upon.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found[1]


async def login_form(client: Client) -> str:
    response = await client.get("/admin")
    assert response.status == 200
    page = await response.text()
    assert 'name="password"' in page
    return csrf_of(page)


async def log_in(client: Client, password: str = ADMIN_PASSWORD) -> str:
    """Logged in: the dashboard's text."""
    csrf = await login_form(client)
    response = await client.post(
        "/admin/login", data={"csrf": csrf, "password": password}, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "../admin"
    dashboard = await client.get("/admin")
    return await dashboard.text()


async def test_without_a_password_the_admin_page_says_it_is_off(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/admin")
    assert response.status == 404
    assert "Admin is off" in await response.text()
    login = await client.post("/admin/login", data={"password": ""})
    assert login.status == 404
    assert (await client.get("/admin/status.json")).status == 404
    assert "Set-Cookie" not in response.headers


async def test_the_session_cookie_is_strict_http_only_and_scoped_to_admin(make_client: MakeClient) -> None:
    client = await make_client(admin=ADMIN)
    response = await client.get("/admin")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("alice_admin=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert response.headers["Cache-Control"] == "no-store"
    assert (await client.get("/")).headers.get("Set-Cookie") is None  # only the admin paths use it


async def test_a_wrong_password_shows_the_form_again_with_an_error(make_client: MakeClient) -> None:
    client = await make_client(admin=ADMIN)
    csrf = await login_form(client)
    response = await client.post("/admin/login", data={"csrf": csrf, "password": "guess"})
    assert response.status == 401
    page = await response.text()
    assert "Wrong password." in page and 'name="password"' in page
    assert "Key pool" not in page
    assert (await client.get("/admin/status.json")).status == 401


async def test_a_post_without_the_forms_csrf_token_is_refused(make_client: MakeClient) -> None:
    client = await make_client(admin=ADMIN)
    await login_form(client)
    for data in ({"password": ADMIN_PASSWORD}, {"csrf": "forged", "password": ADMIN_PASSWORD}):
        response = await client.post("/admin/login", data=data, allow_redirects=False)
        assert response.status == 403
        assert "The form expired" in await response.text()
    assert "Key pool" not in await (await client.get("/admin")).text()


async def test_after_login_the_page_shows_the_key_pool_masked(make_client: MakeClient) -> None:
    client = await make_client(admin=ADMIN)
    await client.post("/chatgpt/createTurbo")  # one live conversation
    page = await log_in(client)
    assert "Key pool" in page
    assert "sk-…1234" in page and UPSTREAM_KEY not in page
    assert '<span class="state active">active</span>' in page
    assert re.search(r'id="conversations">1<', page)
    assert re.search(r'id="shares">0<', page)
    status = await (await client.get("/admin/status.json")).json()
    assert status["conversations"] == 1 and status["shares"] == 0
    assert status["upstreams"] == ["default"]
    assert status["keys"] == [
        {
            "id": key_id(UPSTREAM_KEY),
            "upstream": "default",
            "key": "sk-…1234",
            "state": "active",
            "disabled_reason": None,
            "cooldown_until": None,
            "cooldown_remaining": 0.0,
            "last_error": None,
            "last_error_request_id": None,
            "requests": 0,
            "failures": 0,
            "window_requests": 0,
            "window_failures": 0,
            "success_rate": None,
            "tokens": 0,
        }
    ]


async def test_logout_needs_the_csrf_token_and_ends_the_session(make_client: MakeClient) -> None:
    client = await make_client(admin=ADMIN)
    page = await log_in(client)
    refused = await client.post("/admin/logout", data={}, allow_redirects=False)
    assert refused.status == 403
    assert (await client.get("/admin/status.json")).status == 200
    done = await client.post("/admin/logout", data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert done.status == 303
    assert (await client.get("/admin/status.json")).status == 401
    assert 'name="password"' in await (await client.get("/admin")).text()


async def test_guessing_is_stopped_and_counts_with_the_admin_api(make_client: MakeClient) -> None:
    clock = Clock()

    def setup(app: web.Application) -> None:
        app[appkeys.ADMIN_FAILURES] = FailureLimiter(limit=3, window=60, clock=clock)

    client = await make_client(setup=setup, admin=ADMIN)
    csrf = await login_form(client)
    for _ in range(2):
        await client.post("/admin/login", data={"csrf": csrf, "password": "guess"})
    # The third wrong password goes to the key API: the same allowance.
    assert (await client.get("/admin/keys", headers={"Authorization": "guess"})).status == 401
    blocked = await client.post("/admin/login", data={"csrf": csrf, "password": ADMIN_PASSWORD})
    assert blocked.status == 429
    assert blocked.headers["Retry-After"] == "60"
    assert "Too many wrong passwords" in await blocked.text()
    clock.advance(61)
    assert "Key pool" in await log_in(client)


async def test_a_session_outlives_a_restart_and_a_new_password_ends_it(make_client: MakeClient) -> None:
    """The logged-in sessions and the generated cookie secret are kept in the database, so
    a restart on it keeps them; the password's tag in the cookie ends them when it changes."""
    first = await make_client(admin=ADMIN)
    await log_in(first)
    cookies = first.session.cookie_jar.filter_cookies(first.make_url("/admin"))
    assert "Key pool" in await (await first.get("/admin")).text()
    await first.close()  # one instance per database at a time (its writer lock)
    again = await make_client(admin=ADMIN)  # same database
    again.session.cookie_jar.update_cookies(cookies, again.make_url("/admin"))
    assert "Key pool" in await (await again.get("/admin")).text()
    await again.close()
    changed = await make_client(admin={"password": "a new password"})
    changed.session.cookie_jar.update_cookies(cookies, changed.make_url("/admin"))
    assert 'name="password"' in await (await changed.get("/admin")).text()
    assert (await changed.get("/admin/status.json")).status == 401


async def test_a_configured_session_secret_is_the_cookies_key(make_client: MakeClient) -> None:
    other = base64.urlsafe_b64encode(b"o" * 32).decode()
    client = await make_client(admin={**ADMIN, "session_secret": SECRET})
    assert "Key pool" in await log_in(client)
    cookies = client.session.cookie_jar.filter_cookies(client.make_url("/admin"))
    await client.close()
    for secret, logged_in in ((other, False), (SECRET, True)):
        again = await make_client(admin={**ADMIN, "session_secret": secret})
        again.session.cookie_jar.update_cookies(cookies, again.make_url("/admin"))
        assert ("Key pool" in await (await again.get("/admin")).text()) is logged_in
        await again.close()


async def test_a_malformed_session_secret_stops_the_start_with_an_error_that_hides_it(
    make_client: MakeClient,
) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_client(admin={**ADMIN, "session_secret": "hunter2-not-base64"})
    assert "[admin] session_secret must be 32 random bytes" in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_the_page_lists_shares_and_revokes_one_with_the_csrf_token(make_client: MakeClient) -> None:
    client = await make_client(admin=ADMIN, shares={"separate_ids": True})
    conv_id = await (await client.post("/chatgpt/createTurbo")).text()
    await (await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": conv_id})).read()
    share_id = (await client.post("/chatgpt/store", headers={"conversation": conv_id})).headers["Share-Id"]
    anonymous = await client.post("/admin/revoke-share", data={"id": share_id}, allow_redirects=False)
    assert anonymous.status == 403  # no session, no CSRF token
    page = await log_in(client)
    assert f'<a href="./chatgpt/share/{share_id}">{share_id}</a>' in page
    assert "its own" in page
    refused = await client.post("/admin/revoke-share", data={"id": share_id}, allow_redirects=False)
    assert refused.status == 403
    assert (await client.get(f"/chatgpt/share/{share_id}")).status == 200

    done = await client.post(
        "/admin/revoke-share", data={"csrf": csrf_of(page), "id": share_id}, allow_redirects=False
    )
    assert (done.status, done.headers["Location"]) == (303, "../admin")
    assert (await client.get(f"/chatgpt/share/{share_id}")).status == 404
    after = await (await client.get("/admin")).text()
    assert share_id not in after and "No shares." in after


async def test_a_session_that_is_not_logged_in_cannot_revoke(make_client: MakeClient) -> None:
    client = await make_client(admin=ADMIN)
    conv_id = await (await client.post("/chatgpt/createTurbo")).text()
    await (await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": conv_id})).read()
    await client.post("/chatgpt/store", headers={"conversation": conv_id})
    csrf = await login_form(client)  # a session with a CSRF token, but not logged in
    response = await client.post(
        "/admin/revoke-share", data={"csrf": csrf, "id": conv_id}, allow_redirects=False
    )
    assert response.status == 401
    assert (await client.get(f"/chatgpt/share/{conv_id}")).status == 200


async def test_a_database_that_stops_answering_makes_the_admin_page_a_503_with_a_log_line(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(admin={"password": ADMIN_PASSWORD})
    await log_in(client)
    async with client.app[appkeys.DB_ENGINE].begin() as connection:  # the record is gone under us
        await connection.exec_driver_sql("DROP TABLE admin_sessions")
    response = await client.get("/admin")
    assert response.status == 503
    assert "The database is not answering" in await response.text()
    assert any("admin session: could not check a session" in r.getMessage() for r in caplog.records)
