"""The floor of the fixed stack: a bare aiohttp relay with no alice_py code, run by bench_floor.py.

One ``web.Application`` without middlewares, uvloop, orjson, no access log, one shared
``ClientSession`` (``TCPConnector(limit=0)``). It answers what the benchmark's checks ask of the
real service, doing only what a relay cannot avoid:

- ``POST /chatgpt/quickAnswer`` ``{"question": …}``: one non-streaming upstream call, the answer
  text back in a JSON body;
- ``POST /chatgpt/chat`` (the question as text): one streaming upstream call; the pieces of one
  network read go out in one write as ``data: <piece>`` events, then ``data: [DONE]``;
- ``POST /noup``: reads the JSON body and answers JSON, no upstream call (the server alone);
- ``GET /healthz``: for the harness to wait on.

Run: ``python scripts/bench_floor_app.py --port 8000 --base-url http://127.0.0.1:N/sse/v1``
(``--base-url`` as ``alice_py serve`` takes it: the nginx prefix picks the upstream's behaviour).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
from collections.abc import AsyncIterator, Sequence

import aiohttp
import orjson
import uvloop
from aiohttp import web

MODEL = "gpt-4o-mini"
GC_THRESHOLDS = (50_000, 20, 100)
UPSTREAM_HEADERS = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
JSON_HEADERS = {"Content-Type": "application/json"}
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
DONE_EVENT = b"data: [DONE]\n\n"
SESSION = web.AppKey("session", aiohttp.ClientSession)
COMPLETIONS_URL = web.AppKey("completions_url", str)


def upstream_body(question: str, stream: bool) -> bytes:
    messages = [{"role": "user", "content": question}]
    return orjson.dumps({"model": MODEL, "messages": messages, "stream": stream})


def split_pieces(buffer: bytes) -> tuple[list[str], bytes, bool]:
    """The content pieces of the complete SSE lines in ``buffer``, the incomplete rest, and
    whether ``data: [DONE]`` was among them."""
    *lines, rest = buffer.split(b"\n")
    pieces: list[str] = []
    for line in lines:
        if line.startswith(b"data: {"):
            piece = orjson.loads(line[6:])["choices"][0]["delta"].get("content")
            if piece:
                pieces.append(piece)
        elif line.startswith(b"data: [DONE]"):
            return pieces, b"", True
    return pieces, rest, False


def sse_events(pieces: Sequence[str]) -> bytes:
    # a newline inside a piece starts a new data: line of the same event
    return "".join("data: " + p.replace("\n", "\ndata: ") + "\n\n" for p in pieces).encode()


async def noup(request: web.Request) -> web.Response:
    question = orjson.loads(await request.read())["question"]
    return web.Response(body=orjson.dumps({"answer": question}), headers=JSON_HEADERS)


async def quick_answer(request: web.Request) -> web.Response:
    question = orjson.loads(await request.read())["question"]
    session, url = request.app[SESSION], request.app[COMPLETIONS_URL]
    async with session.post(url, data=upstream_body(question, False), headers=UPSTREAM_HEADERS) as upstream:
        reply = orjson.loads(await upstream.read())
    answer = reply["choices"][0]["message"]["content"]
    return web.Response(body=orjson.dumps({"answer": answer}), headers=JSON_HEADERS)


async def chat(request: web.Request) -> web.StreamResponse:
    question = await request.text()
    session, url = request.app[SESSION], request.app[COMPLETIONS_URL]
    response = web.StreamResponse(headers=SSE_HEADERS)
    async with session.post(url, data=upstream_body(question, True), headers=UPSTREAM_HEADERS) as upstream:
        await response.prepare(request)
        rest, finished = b"", False
        # read to the upstream's end even after [DONE]: a body left unread closes the pooled connection
        async for chunk in upstream.content.iter_any():
            if finished:
                continue
            pieces, rest, finished = split_pieces(rest + chunk)
            if finished:
                # the last pieces, [DONE] and the end of the chunked body in one write
                await response.write_eof(sse_events(pieces) + DONE_EVENT)
            elif pieces:
                await response.write(sse_events(pieces))
    if not finished:
        await response.write_eof(DONE_EVENT)
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(base_url: str) -> web.Application:
    app = web.Application()
    app[COMPLETIONS_URL] = base_url.rstrip("/") + "/chat/completions"

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            app[SESSION] = session
            yield

    app.cleanup_ctx.append(client_session)
    app.router.add_post("/noup", noup)
    app.router.add_post("/chatgpt/quickAnswer", quick_answer)
    app.router.add_post("/chatgpt/chat", chat)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(app: web.Application, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        # The collector settings alice_py's server uses (server.tune_collector): configuration of
        # the stack, not application code, so the floor has them too.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--base-url", required=True, help="the upstream, e.g. http://127.0.0.1:N/fast/v1")
    args = p.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(create_app(args.base_url), args.port))


if __name__ == "__main__":
    main()
