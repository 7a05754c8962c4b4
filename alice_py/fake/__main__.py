"""``python -m alice_py.fake --port 8081``: run the fake OpenAI-compatible server alone."""

from __future__ import annotations

import argparse

from aiohttp import web

from alice_py.fake.state import FakeState
from alice_py.fake.upstream import create_fake_upstream


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m alice_py.fake",
        description="A fake OpenAI-compatible API (the alice-py demo model). It answers every "
        "request with a fixed, clearly labelled demo text; no AI, no network.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--words-per-chunk", type=int, default=1, help="words per streamed chunk")
    args = parser.parse_args(argv)
    state = FakeState(chunk_delay=args.chunk_delay, words_per_chunk=args.words_per_chunk)
    print(
        f"alice-py demo model (fake OpenAI API) at http://{args.host}:{args.port}/v1 — any key works",
        flush=True,
    )
    web.run_app(create_fake_upstream(state), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
