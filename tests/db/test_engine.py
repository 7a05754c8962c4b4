from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from alice_py.db.engine import create_engine, current_revision, mask_url, parse_url, ping, upgrade
from alice_py.db.shares import Share, ShareRepository
from alice_py.errors import ConfigError

# Nothing listens on port 1: connecting is refused at once.
DEAD_PG = "postgresql+asyncpg://alice:hunter2@127.0.0.1:1/alice"


async def test_sqlite_file_gets_its_folder_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "data" / "alice.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        async with engine.connect() as connection:
            pragmas = [
                (await connection.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            ]
    finally:
        await engine.dispose()
    assert path.is_file()
    assert pragmas == ["wal", 5000, 1]


def test_upgrade_from_synchronous_code_like_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "alice.db"
    asyncio.run(upgrade(f"sqlite:///{path}"))
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"shares", "conversations", "upstream_keys"} <= tables
    assert version == ("0010",)


async def test_plain_urls_get_the_async_driver(tmp_path: Path) -> None:
    assert create_engine(f"sqlite:///{tmp_path / 'a.db'}").url.drivername == "sqlite+aiosqlite"
    assert create_engine("postgresql://u@127.0.0.1/db").url.drivername == "postgresql+asyncpg"
    assert create_engine("postgres://u@127.0.0.1/db").url.drivername == "postgresql+asyncpg"


async def test_in_memory_database_through_its_engine() -> None:
    engine = create_engine("sqlite+aiosqlite://")
    try:
        await upgrade(engine)
        await ShareRepository(engine).put("mem12345", "p", ["q"])
        assert await ShareRepository(engine).get("mem12345") == Share("mem12345", "p", ("q",))
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root:hunter2@db/alice", "unsupported database URL 'mysql://root:***@db/alice'"),
        ("not a url at all", "malformed database URL 'not a url at all'"),
        ("postgresql+asyncpg://u:hunter2@host:notaport/db", "malformed database URL"),
    ],
)
def test_bad_urls_are_config_errors_without_the_password(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_engine(url)
    assert expected in str(caught.value)
    assert "sqlite+aiosqlite:///" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_mask_url() -> None:
    assert mask_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert mask_url("sqlite:///./data/alice.db") == "sqlite:///./data/alice.db"


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        create_engine(f"sqlite+aiosqlite:///{tmp_path}")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(ConfigError, match=r"cannot open the database .*notes\.db'.*not a database"):
        create_engine(f"sqlite+aiosqlite:///{path}")
    assert path.read_text().startswith("these are my notes")


def test_folder_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot create the folder"):
        create_engine(f"sqlite+aiosqlite:///{blocker / 'alice.db'}")


async def test_unreachable_postgres_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        await upgrade(DEAD_PG)
    message = str(caught.value)
    assert message.startswith("cannot open the database 'postgresql+asyncpg://alice:***@127.0.0.1:1/alice'")
    assert "hunter2" not in message


@pytest.mark.postgres
async def test_unknown_server_setting_is_reported(pg_url: str) -> None:
    with pytest.raises(ConfigError, match=r"cannot open the database.*no_such_setting"):
        await upgrade(pg_url + "&no_such_setting=1")


async def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"
    await upgrade(url)
    with sqlite3.connect(tmp_path / "alice.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0099'")
    expected = r"cannot upgrade the database .* to revision head: .*0099.*newer alice-py"
    with pytest.raises(ConfigError, match=expected):
        await upgrade(url)


async def test_ping(tmp_path: Path) -> None:
    good = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}")
    dead = create_engine(DEAD_PG)
    try:
        assert await ping(good) is None
        reason = await ping(dead)
        assert reason is not None
        assert reason.startswith("database unavailable: ")
        assert "hunter2" not in reason
        assert await current_revision(good) is None
    finally:
        await good.dispose()
        await dead.dispose()


@pytest.mark.postgres
async def test_ping_postgres(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        assert await ping(engine) is None
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_raw_at_in_the_password_runs_to_the_last_at(pg_url: str) -> None:
    """PostgreSQL here trusts any password: the test is that the host is read right
    (SQLAlchemy alone would try to reach a host named ``rd@127.0.0.1``)."""
    url = pg_url.replace("://postgres@", "://postgres:pw@rd@")
    assert parse_url(url).password == "pw@rd"
    await upgrade(url)
    engine = create_engine(url)
    try:
        assert await ping(engine) is None
        assert mask_url(engine.url).startswith("postgresql+asyncpg://postgres:***@127.0.0.1:5432/test")
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:Xq7@Zk9@h/db",
        "postgresql://u:Xq7/Zk9@h/db",
        "postgresql://u:Xq7@Zk9/Wm4@h/db",
        "postgresql://u:Xq7@Zk9?Wm4@h/db",
    ],
)
def test_masking_hides_every_part_of_the_password(url: str) -> None:
    assert mask_url(url) == "postgresql://u:***@h/db"
    try:
        masked = mask_url(parse_url(url))
    except ConfigError as exc:  # the ambiguous ones are refused, and say so without the password
        masked = str(exc)
        assert "percent-encode" in masked
    assert not {"Xq7", "Zk9", "Wm4"} & set(re.findall(r"\w+", masked))
