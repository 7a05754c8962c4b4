"""``/healthz`` (the process answers) and ``/readyz`` (it can do useful work)."""

from __future__ import annotations

from aiohttp import web

from alice_py import appkeys
from alice_py.db.engine import ping


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    """200 only when the database answers, passed its last periodic checks (``db.health``: writable,
    the same SQLite file, the writer lock held), Redis answers (``store = "redis"``) and at least
    one upstream key is usable."""
    app = request.app
    problems: list[str] = []
    db_problem = await ping(app[appkeys.DB_ENGINE])
    if db_problem:
        problems.append(f"database: {db_problem}")
    health = app.get(appkeys.DB_HEALTH)
    if health is not None and health.problem is not None:
        problems.append(f"database: {health.problem}")
    redis = app.get(appkeys.REDIS)
    if redis is not None:
        from alice_py.redis_client import ping_redis  # loaded only with the Redis store

        redis_problem = await ping_redis(redis)
        if redis_problem:
            problems.append(f"redis: {redis_problem}")
    if not any(target.pool.usable_count() for target in app[appkeys.ROUTER].targets):
        problems.append("upstream: No available API keys")
    if problems:
        return web.Response(status=503, text="not ready: " + "; ".join(problems))
    return web.Response(text="ready")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
