"""``alice-py chat``: talk to a running alice-py server from the terminal, over the Alice API.

- ``client``: the async HTTP client of ``/chatgpt/*`` (auth headers, SSE answers, errors);
- ``session``: the conversation, the ``/`` commands, what goes to stdout and stderr;
- ``terminal``: line input (readline, history), Ctrl-C, the event loop's thread.

Exit status: 0; 1 when the server cannot be reached or refuses the token, and, when the
input is not a terminal, when any question failed; 130 on Ctrl-C when not interactive.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from alice_py.chat.client import AliceClient, Credentials

# The client, the session and the terminal are imported by ``run_chat`` only: every
# ``alice-py`` command builds this parser, and a serving process has no use for them.

AuthMode = Literal["simple", "normal", "none"]
ConvKind = Literal["turbo", "gpt4", "gpt3"]
AUTH_MODES: tuple[AuthMode, ...] = ("simple", "normal", "none")
KINDS: tuple[ConvKind, ...] = ("turbo", "gpt4", "gpt3")

DEFAULT_URL = "http://127.0.0.1:7777"

__all__ = ["add_chat_parser", "run_chat"]


def _base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an address like {DEFAULT_URL}, got {value!r}")
    return value.rstrip("/")


def add_chat_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``chat`` subcommand, on ``sub`` (the main parser's subparsers)."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "chat",
        help="talk to a running alice-py server from the terminal",
        description="An interactive chat with a running alice-py server (start one with "
        "`alice-py serve --demo`). Piped input: one question per line, only the answers are printed. "
        "Type /help in the chat for its commands.",
    )
    parser.add_argument("--url", type=_base_url, default=DEFAULT_URL, help=f"the server ({DEFAULT_URL})")
    parser.add_argument("--token", default="alice", help="the server's secret (alice)")
    parser.add_argument(
        "--auth", choices=AUTH_MODES, default="simple", help="the server's auth mode (simple)"
    )
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="turbo",
        help="turbo: chat model, streamed (the default); gpt4: chat model, whole answers; "
        "gpt3: text completion",
    )
    parser.add_argument(
        "--prompt",
        default="",
        help="the system prompt (gpt3: the transcript's opening text); empty: the server's default",
    )
    return parser


def run_chat(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    from alice_py.chat.client import Credentials, Fatal
    from alice_py.chat.session import ChatSession, Console
    from alice_py.chat.terminal import LineReader, Portal, converse, ctrl_c_stops, history_path

    env = os.environ if environ is None else environ
    interactive = sys.stdin.isatty()
    console = Console(sys.stdout, sys.stderr, chatty=interactive)
    reader = LineReader(interactive, history_path(env), console)
    try:
        with Portal() as portal:
            client = portal.call(_open(args.url, Credentials(args.auth, args.token)))
            session = ChatSession(client, console, args.kind, args.prompt)
            try:
                portal.call(session.start())
                console.info(
                    f"alice-py chat: conversation {session.conv_id} ({args.kind}) at {args.url}; "
                    "/help lists the commands, /quit or Ctrl-D leaves"
                )
                if not interactive:
                    converse(portal, session, reader)
                else:
                    with ctrl_c_stops(portal):
                        converse(portal, session, reader)
            finally:
                portal.call(session.close())
    except Fatal as exc:
        console.break_line()
        print(f"alice-py chat: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped (``| head``); nothing more to say to them.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 1 if session.failures and not interactive else 0


async def _open(url: str, credentials: Credentials) -> AliceClient:
    from alice_py.chat.client import AliceClient

    return AliceClient.open(url, credentials)
