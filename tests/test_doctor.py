"""``alice-py doctor``: the database, each upstream and key checked against real servers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from alice_py import cli
from alice_py.config import Config, UpstreamEntry
from alice_py.doctor import run_checks, table
from alice_py.fake import RunningFake
from tests.support import free_port

GOOD, BAD = "sk-good-1111111111111111", "sk-bad-aaaaaaaaaaaaaaaa"


async def test_doctor_names_each_key_and_what_to_fix(fake: RunningFake, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    cfg = dataclasses.replace(
        Config().replace(database={"url": f"sqlite+aiosqlite:///{tmp_path / 'new' / 'alice.db'}"}),
        upstreams=(
            UpstreamEntry(name="main", base_url=fake.url, keys=(GOOD, BAD)),
            UpstreamEntry(name="gone", base_url=dead, keys=(GOOD,), connect_timeout=1.0),
        ),
    )
    progress: list[str] = []
    checks = await run_checks(cfg, progress.append)
    assert len(progress) == 4  # the database and one line per key
    assert [(c.ok, c.result.split(":")[0]) for c in checks] == [
        (True, "not created yet (serve creates and migrates it)"),
        (True, "valid"),
        (False, "invalid key (refused by the API)"),
        (False, "unreachable"),
    ]
    text = table(checks)
    assert "sk-…1111" in text and "sk-…aaaa" in text and GOOD not in text and BAD not in text
    assert "replace or remove the key" in text
    assert not (tmp_path / "new").exists()  # checking created nothing


def test_doctor_exit_status_is_1_when_something_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "key.txt"
    keys.write_text("sk-some-0000000000000000\n", encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}/v1"
    db = f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"
    status = cli.main(["doctor", "--base-url", url, "--keys-file", str(keys), "-db", db], environ={})
    out = capsys.readouterr().out
    assert status == 1
    assert "PROBLEM: unreachable" in out and "1 problem(s) to fix" in out
