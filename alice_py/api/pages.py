"""The browser side's routes: the playground at ``/`` and its files under ``/static/``.

The static files are the package's ``web/static`` folder, read once when the routes
are added (a few kilobytes), served from memory with an ``ETag`` so browsers revalidate
cheaply. Only the files found there exist: a name is a dictionary key, never a path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePath

from aiohttp import web
from aiohttp.typedefs import Handler

from alice_py import __version__, appkeys
from alice_py.web.pages import html_response, playground_page

STATIC_PREFIX = "/static"
CONTENT_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
"""By suffix, fixed here rather than guessed from the host's mime.types."""


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_static_files() -> dict[str, StaticFile]:
    folder = resources.files("alice_py.web").joinpath("static")
    files: dict[str, StaticFile] = {}
    for entry in folder.iterdir():
        if not entry.is_file() or entry.name.startswith("."):
            continue
        body = entry.read_bytes()
        content_type = CONTENT_TYPES.get(PurePath(entry.name).suffix, "application/octet-stream")
        files[entry.name] = StaticFile(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')
    return files


def static_handler(files: dict[str, StaticFile]) -> Handler:
    async def serve_static(request: web.Request) -> web.StreamResponse:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="No such file")
        headers = {"ETag": found.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if found.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        charset = "utf-8" if found.content_type.startswith("text/") else None
        return web.Response(
            body=found.body, content_type=found.content_type, charset=charset, headers=headers
        )

    return serve_static


def playground_handler(body: str) -> Handler:
    async def playground(request: web.Request) -> web.StreamResponse:
        return html_response(body)

    return playground


def add_routes(app: web.Application) -> None:
    """``GET /`` (the playground, rendered once: it only depends on the config) and ``/static/``."""
    page = playground_page(app[appkeys.CONFIG].auth.mode, __version__)
    app.router.add_get("/", playground_handler(page))
    app.router.add_get(STATIC_PREFIX + "/{name}", static_handler(load_static_files()))
