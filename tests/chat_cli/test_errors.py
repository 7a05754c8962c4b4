"""What the user sees when the server is not there, refuses the token, or is not alice-py."""

from __future__ import annotations

from pathlib import Path

from alice_py.fake import CHAT_PREFIX, RunningFake
from tests.chat_cli.conftest import SECRET, MakeServer
from tests.chat_cli.helpers import chat_env, run_chat
from tests.support import free_port

REFUSED = (
    "alice-py chat: the server refused the token: pass --token with the server's secret "
    "(and --auth normal or --auth none if the server runs in that mode)\n"
)


async def test_unreachable_server_one_line_and_status_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await run_chat(["--url", url], "hi\n", chat_env(tmp_path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"alice-py chat: cannot reach alice-py at {url}: Connection refused; "
        "start it with `alice-py serve --demo`\n"
    )


async def test_wrong_token_one_line_and_status_1(server: str, tmp_path: Path) -> None:
    result = await run_chat(["--url", server, "--token", "wrong"], "hi\n", chat_env(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (1, "", REFUSED)


async def test_default_token_against_a_server_with_its_own_secret(server: str, tmp_path: Path) -> None:
    result = await run_chat(["--url", server], "hi\n", chat_env(tmp_path))
    assert (result.returncode, result.stderr) == (1, REFUSED)


async def test_wrong_token_with_the_originals_status_codes(make_server: MakeServer, tmp_path: Path) -> None:
    # --compat-status answers a bad token with 505, as the Go original did.
    url = await make_server(server={"compat_status": True})
    result = await run_chat(["--url", url, "--token", "wrong"], "hi\n", chat_env(tmp_path))
    assert (result.returncode, result.stderr) == (1, REFUSED)


async def test_normal_auth_signs_every_request_afresh(make_server: MakeServer, tmp_path: Path) -> None:
    # Normal mode accepts each uuid once: several requests prove each one got a new uuid.
    url = await make_server(auth={"mode": "normal"})
    args = ["--url", url, "--auth", "normal", "--token", SECRET]
    result = await run_chat(args, "hi\nagain\n/rollback\n", chat_env(tmp_path))
    assert result.stderr == ""
    assert result.stdout == f"{CHAT_PREFIX}hi\n{CHAT_PREFIX}again\nRollback Succeeded\n"


async def test_normal_auth_with_the_wrong_secret(make_server: MakeServer, tmp_path: Path) -> None:
    url = await make_server(auth={"mode": "normal"})
    result = await run_chat(["--url", url, "--auth", "normal"], "hi\n", chat_env(tmp_path))
    assert (result.returncode, result.stderr) == (1, REFUSED)


async def test_no_auth(make_server: MakeServer, tmp_path: Path) -> None:
    url = await make_server(auth={"mode": "none"})
    result = await run_chat(["--url", url, "--auth", "none"], "hi\n", chat_env(tmp_path))
    assert (result.returncode, result.stdout) == (0, CHAT_PREFIX + "hi\n")


async def test_a_server_that_is_not_alice_py(fake: RunningFake, tmp_path: Path) -> None:
    result = await run_chat(["--url", fake.url], "hi\n", chat_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr == (
        f"alice-py chat: {fake.url}/chatgpt/createTurbo answered 404 Not Found: is this an alice-py server?\n"
    )


async def test_a_url_that_is_not_http(tmp_path: Path) -> None:
    result = await run_chat(["--url", "localhost:7777"], "", chat_env(tmp_path))
    assert result.returncode == 2
    assert "argument --url: expected an address like http://127.0.0.1:7777" in result.stderr
