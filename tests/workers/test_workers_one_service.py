"""``alice-py serve --workers 2`` is one service to an admin and to Prometheus: a login through one
worker is a login on the other, a logout through either ends it on both, and ``/metrics`` on
either worker counts every worker's requests (a killed worker's included).

Which worker answered: the prefix of ``X-Request-Id`` (see ``test_workers_redis``)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import aiohttp

from alice_py.fake import RunningFake
from tests.dialects.test_upstreams_app import sample
from tests.support import wait_until
from tests.workers.test_workers_redis import (
    STARTUP,
    children,
    one_connection_per_worker,
    redis_env,
    serving,
    supervised,
)

PASSWORD = "correct horse battery staple"
COOKIE = "alice_admin"


def worker_of(resp: aiohttp.ClientResponse) -> str:
    return resp.headers["X-Request-Id"].rsplit("-", 1)[0]


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found[1]


class Admin:
    """The admin page through one worker's kept-alive connection, the cookie carried by hand
    (aiohttp's jar keeps no cookie of an IP address), so it can be shown to the other worker."""

    def __init__(self, url: str, session: aiohttp.ClientSession, prefix: str) -> None:
        self.url, self.session, self.prefix = url, session, prefix

    async def get(self, path: str, cookie: str) -> tuple[int, str, str]:
        """Status, body and (if the answer set one) the new cookie."""
        async with self.session.get(self.url + path, headers={"Cookie": f"{COOKIE}={cookie}"}) as resp:
            assert worker_of(resp) == self.prefix
            return resp.status, await resp.text(), _cookie(resp, cookie)

    async def post(self, path: str, cookie: str, form: dict[str, str]) -> tuple[int, str]:
        """Status and the cookie after it (a 303 is not followed)."""
        async with self.session.post(
            self.url + path, data=form, headers={"Cookie": f"{COOKIE}={cookie}"}, allow_redirects=False
        ) as resp:
            assert worker_of(resp) == self.prefix
            return resp.status, _cookie(resp, cookie)

    async def logged_in(self, cookie: str) -> bool:
        status, page, _ = await self.get("/admin", cookie)
        assert status == 200
        json_status, _, _ = await self.get("/admin/status.json", cookie)
        assert ("Key pool" in page) == (json_status == 200)
        return json_status == 200


def _cookie(resp: aiohttp.ClientResponse, before: str) -> str:
    morsel = resp.cookies.get(COOKIE)
    return before if morsel is None else morsel.value


async def test_a_login_on_one_worker_holds_on_the_other_and_a_logout_on_either_ends_it_on_both(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    env = {**redis_env(*redis_prefix), "ALICE_ADMIN_PASSWORD": PASSWORD}
    async with supervised(tmp_path, fake, env) as alice:
        async with one_connection_per_worker(alice) as pinned:
            one, other = (Admin(alice.url, session, prefix) for prefix, session in pinned.items())
            status, form, cookie = await one.get("/admin", "")
            assert status == 200 and 'name="password"' in form
            login = {"csrf": csrf_of(form), "password": PASSWORD}
            status, cookie = await one.post("/admin/login", cookie, login)
            assert status == 303
            assert await one.logged_in(cookie)
            for _ in range(3):  # each request of its own on the worker that did not log it in
                assert await other.logged_in(cookie)
            # Logout through the other worker: the cookie the first still holds is refused there too.
            _, dashboard, _ = await other.get("/admin", cookie)
            status, _ = await other.post("/admin/logout", cookie, {"csrf": csrf_of(dashboard)})
            assert status == 303
            assert not await one.logged_in(cookie)
            assert not await other.logged_in(cookie)
        await alice.stop()


async def scrape(session: aiohttp.ClientSession, url: str) -> tuple[str, str]:
    async with session.get(url + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text(), worker_of(resp)


async def test_metrics_on_either_worker_count_every_workers_requests(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    temp = tmp_path / "temp"  # where the supervisor makes the workers' directory (TMPDIR)
    temp.mkdir()
    async with supervised(tmp_path, fake, {**redis_env(*redis_prefix), "TMPDIR": str(temp)}) as alice:
        (directory,) = temp.iterdir()
        async with one_connection_per_worker(alice) as pinned:
            # 7 through one worker, 4 through the other: 404s of the Alice API, which nothing
            # else in the test asks for (one_connection_per_worker's own requests are 200s).
            for (prefix, session), count in zip(pinned.items(), (7, 4), strict=True):
                for _ in range(count):
                    async with session.post(f"{alice.url}/chatgpt/noSuchRoute") as resp:
                        assert resp.status == 404 and worker_of(resp) == prefix
            for prefix, session in pinned.items():
                text, answered = await scrape(session, alice.url)
                assert answered == prefix
                assert sample(text, "alice_requests_total", dialect="alice", status="404") == 11
                assert sample(text, "alice_open_streams") == 0
            # A worker killed: what it counted stays counted (a counter never goes back).
            victim = serving(alice)[next(iter(pinned))]
        os.kill(victim, signal.SIGKILL)
        await alice.wait_for_log(f"(pid {victim}) ended with signal SIGKILL")
        async with aiohttp.ClientSession() as fresh:
            text, _ = await scrape(fresh, alice.url)
        assert sample(text, "alice_requests_total", dialect="alice", status="404") == 11
        await wait_until(lambda: len(children(alice.proc.pid)) == 2, STARTUP)
        await alice.stop()
    assert not directory.exists()  # removed by the supervisor at its stop
    assert not list(temp.iterdir())
