"""The database going away is noticed by the real process: /readyz 503 and an ERROR line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alice_py.fake import RunningFake
from tests.persistence.helpers import running_alice

CHECK = {"ALICE_DATABASE_CHECK_INTERVAL": "0.2"}


async def test_a_deleted_sqlite_file_is_logged_by_name_and_makes_readyz_503(
    tmp_path: Path, fake: RunningFake
) -> None:
    path = tmp_path / "alice.db"
    async with running_alice(tmp_path, fake, **CHECK) as alice:
        assert await alice.readyz() == (200, "ready")
        path.unlink()
        await alice.wait_for_log(f"ERROR alice_py.db.health: the database file {path} was deleted")
        assert str(path) in await alice.until_ready(503, "was deleted under the running service")
        await alice.stop()


async def test_a_replaced_sqlite_file_is_noticed(tmp_path: Path, fake: RunningFake) -> None:
    path = tmp_path / "alice.db"
    async with running_alice(tmp_path, fake, **CHECK) as alice:
        assert await alice.readyz() == (200, "ready")
        moved = tmp_path / "old.db"
        path.rename(moved)
        path.write_bytes(moved.read_bytes())  # a copy (a restore from backup) in its place
        await alice.wait_for_log(f"the database file {path} was replaced under the running service")
        await alice.until_ready(503, "replaced")
        await alice.stop()


async def test_a_database_that_refuses_writes_makes_readyz_503_until_it_takes_them_again(
    tmp_path: Path, fake: RunningFake
) -> None:
    async with running_alice(tmp_path, fake, **CHECK) as alice:
        assert await alice.readyz() == (200, "ready")
        with sqlite3.connect(tmp_path / "alice.db") as db:  # reads still work; writes do not
            db.execute(
                "CREATE TRIGGER no_writes BEFORE UPDATE ON health_probe "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        await alice.wait_for_log("ERROR alice_py.db.health: the database cannot be written: disk full")
        await alice.until_ready(503, "the database cannot be written: disk full")
        with sqlite3.connect(tmp_path / "alice.db") as db:
            db.execute("DROP TRIGGER no_writes")
        await alice.wait_for_log("the database takes writes again")
        assert await alice.until_ready(200) == "ready"
        await alice.stop()
