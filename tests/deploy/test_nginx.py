"""docs/deploy.md as a user follows it: nginx, with the configuration block of that page (only its
ports changed), in front of two real instances on one Redis and one PostgreSQL; one conversation
through nginx lands on both instances, and a streamed answer reaches the client event by event."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from alice_py.fake import CHAT_PREFIX, RunningFake
from tests.persistence.helpers import Alice, running_alice
from tests.support import free_port

DEPLOY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
NGINX = "/usr/sbin/nginx"
CLIENT = "127.0.0.2"
"""The client's own loopback address, so that what nginx forwards for can be told from nginx."""


def documented_block() -> str:
    """The page's nginx configuration, as a user copies it."""
    blocks = re.findall(r"```nginx\n(.*?)```", DEPLOY_DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "docs/deploy.md should hold one nginx block"
    return blocks[0]


def with_ports(block: str, listen: int, instances: list[int]) -> str:
    documented = re.findall(r"^\s*server 127\.0\.0\.1:(\d+);", block, re.M)
    assert len(documented) == len(instances), documented
    for old, new in zip(documented, instances, strict=True):
        block = block.replace(f"server 127.0.0.1:{old};", f"server 127.0.0.1:{new};")
    block, listens = re.subn(r"^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{listen};", block, flags=re.M)
    assert listens == 1
    return block


def nginx_conf(root: Path, block: str) -> str:
    """What Debian's nginx.conf gives conf.d/ (the http block), with every file under ``root``."""
    return f"""worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
{block}
}}
"""


@contextlib.contextmanager
def nginx_root() -> Iterator[Path]:
    """A folder of nginx's own; as root it runs as ``nobody`` (never holding root), who owns it."""
    root = Path(tempfile.mkdtemp(prefix="alice-nginx-"))
    try:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def unprivileged(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    nobody = pwd.getpwnam("nobody")
    return ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", "--", *argv]


@asynccontextmanager
async def running_nginx(instances: list[int]) -> AsyncIterator[str]:
    if shutil.which(NGINX) is None:
        pytest.fail(f"{NGINX} is missing: apt-get install nginx-light", False)
    port = free_port()
    with nginx_root() as root:
        conf = root / "nginx.conf"
        conf.write_text(nginx_conf(root, with_ports(documented_block(), port, instances)))
        conf.chmod(0o644)
        argv = unprivileged([NGINX, "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")])
        check = await asyncio.create_subprocess_exec(*argv, "-t", "-q", stderr=asyncio.subprocess.PIPE)
        _, errors = await check.communicate()
        assert check.returncode == 0, f"nginx refused the documented block:\n{errors.decode()}"
        proc = await asyncio.create_subprocess_exec(*argv, "-g", "daemon off;")
        try:
            await _listening(port, proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()


async def _listening(port: int, proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(15):
        while True:
            assert proc.returncode is None, f"nginx exited with {proc.returncode}"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return


def instance_env(redis_url: str, key_prefix: str) -> dict[str, str]:
    """What docs/deploy.md says every instance needs, as environment variables."""
    return {
        "ALICE_CONVERSATIONS_STORE": "redis",
        "ALICE_CONVERSATIONS_REDIS_URL": redis_url,
        "ALICE_CONVERSATIONS_KEY_PREFIX": key_prefix,
        "ALICE_SERVER_TRUSTED_PROXIES": "127.0.0.1",
        "ALICE_SERVER_ACCESS_LOG": "true",
    }


def events(body: str) -> list[str]:
    return [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]


async def test_a_conversation_through_the_documented_nginx_lands_on_both_instances_and_streams(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str], pg_url: str
) -> None:
    async with AsyncExitStack() as stack:
        env = instance_env(*redis_prefix)
        instances: list[Alice] = [
            await stack.enter_async_context(running_alice(tmp_path, fake, db=pg_url, **env)) for _ in range(2)
        ]
        ports = [int(alice.url.rsplit(":", 1)[1]) for alice in instances]
        front = await stack.enter_async_context(running_nginx(ports))
        client = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(CLIENT, 0)))
        )

        async def turn(route: str, body: str = "", conv: str | None = None) -> tuple[str, str]:
            headers = {"conversation": conv} if conv else {}
            async with client.post(f"{front}/chatgpt/{route}", data=body.encode(), headers=headers) as resp:
                text = await resp.text()
                assert resp.status == 200, text
                return text, resp.headers["X-Request-Id"].rsplit("-", 1)[0]

        conv, created_by = await turn("createTurbo", '{"stream": true}')
        answered_by = {created_by}
        for n in range(4):
            answer, prefix = await turn("chat", f"question {n}", conv)
            assert "".join(events(answer)[:-1]) == CHAT_PREFIX + f"question {n}"
            answered_by.add(prefix)
        assert len(answered_by) == 2  # round robin: both instances took turns of the one conversation

        # A slow streamed answer: its first event arrives while the model is still writing the rest.
        fake.state.chunk_delay = 0.4
        question = "one two three four five six"
        slow = client.post(f"{front}/chatgpt/chat", data=question.encode(), headers={"conversation": conv})
        async with slow as resp:
            assert resp.status == 200
            first = await resp.content.readuntil(b"\n\n")
            assert first.startswith(b"data: ")
            started = time.monotonic()
            rest = await resp.content.read()
            still_writing = time.monotonic() - started
        fake.state.chunk_delay = 0.0
        assert still_writing > 1.0  # ≥ 5 chunks × 0.4 s came after the first event: nothing held it back
        assert "".join(events((first + rest).decode())[:-1]) == CHAT_PREFIX + question

        context, _ = await turn("contextArray", conv=conv)
        assert context.count("question") == 8 and question in context

        for alice in instances:  # each instance's access log: its share of the turns, from the client
            assert f' {CLIENT} "POST /chatgpt/chat" 200' in alice.log, alice.log
            assert ' 127.0.0.1 "POST /chatgpt/chat"' not in alice.log  # never nginx's address
            await alice.stop()
