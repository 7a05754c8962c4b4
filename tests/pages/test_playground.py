"""The playground page and the files it loads, as a browser fetches them."""

from __future__ import annotations

import re

from tests.pages.conftest import MakeClient


async def test_the_playground_is_the_home_page(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "normal"})
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert '<body class="page-playground" data-auth-mode="normal">' in page
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Everything it runs comes from /static: no inline script, no inline event handler.
    assert re.search(r"<script(?![^>]*\ssrc=)", page) is None
    assert re.search(r"\son[a-z]+=", page) is None
    assert "'unsafe-eval'" not in csp


async def test_the_secret_is_never_put_into_the_page(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple", "token": "do-not-leak-me"})
    assert "do-not-leak-me" not in await (await client.get("/")).text()


async def test_every_file_the_page_loads_is_served_and_revalidated(make_client: MakeClient) -> None:
    client = await make_client()
    page = await (await client.get("/")).text()
    wanted = re.findall(r'(?:src|href)="(static/[^"]+)"', page)
    assert sorted(wanted) == [
        "static/app.css",
        "static/history.js",
        "static/markdown.js",
        "static/playground.js",
        "static/vendor/marked.umd.js",
        "static/vendor/purify.min.js",
    ]
    types = {".css": "text/css", ".js": "text/javascript"}
    for path in wanted:
        response = await client.get("/" + path)
        assert response.status == 200, path
        assert response.content_type == types[path[path.rindex(".") :]]
        assert len(await response.read()) > 1000
        again = await client.get("/" + path, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status == 304


async def test_only_the_packaged_files_exist(make_client: MakeClient) -> None:
    client = await make_client()
    for path in (
        "/static/nope.js",
        "/static/..%2Fpages.py",
        "/static/%2E%2E%2F__init__.py",
        "/static/vendor/nope.js",
        "/static/vendor/..%2F..%2Fpages.py",
        "/static/templates/playground.html",
    ):
        response = await client.get(path)
        assert response.status == 404, path


async def test_the_vendored_libraries_come_with_their_licences(make_client: MakeClient) -> None:
    client = await make_client()
    for path, names in (
        ("/static/vendor/marked.umd.js", "marked v18.3.0"),
        ("/static/vendor/purify.min.js", "DOMPurify 3.5.0"),
    ):
        assert names in (await (await client.get(path)).text())[:400]
    for path in ("marked-LICENSE.txt", "dompurify-LICENSE.txt", "dompurify-LICENSE-MPL.txt"):
        response = await client.get("/static/vendor/" + path)
        assert response.status == 200 and response.content_type == "text/plain", path
        assert "License" in await response.text()
