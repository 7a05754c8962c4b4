"""The browser side's routes: the playground at ``/`` and its files under ``/static/``.

The static files are the package's ``web/static`` folder and its ``vendor/`` subfolder (the
released third-party files the playground loads), read once when the routes are added (about
a hundred kilobytes), served from memory with an ``ETag`` so browsers revalidate cheaply. Only
the files found there exist: a name (``app.css``, ``vendor/purify.min.js``) is a dictionary key,
never a path.
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
STATIC_SUBFOLDERS = ("vendor",)
CONTENT_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
}
"""By suffix, fixed here rather than guessed from the host's mime.types."""


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_static_files() -> dict[str, StaticFile]:
    root = resources.files("alice_py.web").joinpath("static")
    folders = [("", root), *((f"{name}/", root.joinpath(name)) for name in STATIC_SUBFOLDERS)]
    files: dict[str, StaticFile] = {}
    for prefix, folder in folders:
        for entry in folder.iterdir():
            if not entry.is_file() or entry.name.startswith("."):
                continue
            body = entry.read_bytes()
            content_type = CONTENT_TYPES.get(PurePath(entry.name).suffix, "application/octet-stream")
            etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
            files[prefix + entry.name] = StaticFile(body, content_type, etag)
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
    subfolder = "|".join(STATIC_SUBFOLDERS)
    route = STATIC_PREFIX + f"/{{name:(?:(?:{subfolder})/)?[^/]+}}"
    app.router.add_get(route, static_handler(load_static_files()))
