"""Opening the database: URL checks, the async engine, migrations and a health ping.

SQLite (``sqlite+aiosqlite:///./data/alice.db``) is the default; a
``postgresql+asyncpg://user:password@host:5432/db`` URL switches to PostgreSQL.
Plain ``sqlite://`` and ``postgresql://`` URLs get the async driver added. As
with asyncpg's own DSNs, PostgreSQL URL query parameters that are not connect
options become server settings, e.g. ``?search_path=alice`` to use a schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import alice_py
from alice_py import config
from alice_py.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
"""What a database that does not answer (gone, locked, unreachable) raises."""
SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"
_DRIVERS = {
    "sqlite": SQLITE_DRIVER,
    SQLITE_DRIVER: SQLITE_DRIVER,
    "postgresql": POSTGRES_DRIVER,
    "postgres": POSTGRES_DRIVER,
    POSTGRES_DRIVER: POSTGRES_DRIVER,
}
_URL_HELP = "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user:password@host:5432/dbname"

# Deferred BEGIN (see _begin_sqlite) plus WAL lets readers run beside one writer;
# busy_timeout makes a second writer wait instead of failing at once.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)
_PG_CONNECT_TIMEOUT = 10.0
_SQLITE_WAL_WAIT = 5.0
"""Seconds a new SQLite file's switch to WAL is tried again while another process makes it."""
# Execution option: take the write lock when the transaction begins.
_WRITE_LOCK = "alice_write_lock"
# Any fixed number: instances starting together run the migrations one at a time.
_PG_MIGRATION_LOCK = 0x616C696365
# Query parameters SQLAlchemy's asyncpg adapter itself consumes.
_PG_ADAPTER_OPTIONS = frozenset({"prepared_statement_cache_size", "prepared_statement_name_func"})


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***``, safe for logs and messages.

    Everything from the first ``:`` of the user part to the *last* ``@`` is hidden
    (``config.mask_url``): a password can hold any character, a raw ``@`` or ``/`` included,
    and none of it must show, even where SQLAlchemy would cut the password short."""
    if isinstance(url, URL):
        url = url.render_as_string(hide_password=False)  # quoted: its '@' become %40
    return config.mask_url(url)


def _password_to_last_at(url: URL) -> URL:
    """SQLAlchemy ends a password at its first ``@`` and leaves the rest in the host
    (``pu:sec@ret@host`` → host ``ret@host``). A host never holds an ``@``, so the password
    runs to the last one, as Python's ``urllib`` and browsers read a URL."""
    if url.password is None or url.host is None or "@" not in url.host:
        return url
    rest, _, host = url.host.rpartition("@")
    return url.set(password=f"{url.password}@{rest}", host=host)


def _check_no_stray_at(url: URL, given: str) -> None:
    """With a password, what follows the text's last ``@`` must be the host: otherwise the
    password also holds a raw ``/`` or ``?`` (or an ``@`` comes later, in the query), and
    rather than guess where it ends (and show a piece of it as a host), refuse."""
    if url.password is None:
        return
    host = url.host or ""
    shown = f"[{host}]" if ":" in host else host
    if not re.match(re.escape(shown) + r"(?:[:/?]|$)", given.rpartition("@")[2]):
        raise ConfigError(
            f"database URL {mask_url(given)!r}: percent-encode the special characters of the "
            "user name and password (@ as %40, / as %2F, ? as %3F, # as %23), and any @ after the host"
        )


def parse_url(url: str) -> URL:
    """The URL with its async driver, or ``ConfigError`` naming it (masked) and the supported forms."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"malformed database URL {mask_url(url)!r}: {_URL_HELP}") from None
    parsed = _password_to_last_at(parsed)
    _check_no_stray_at(parsed, url)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(f"unsupported database URL {mask_url(parsed)!r}: {_URL_HELP}")
    return parsed.set(drivername=driver)


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _prepare_sqlite_file(url: URL) -> None:
    """Create the file's folder, and the file itself in WAL mode, so a fresh install needs no setup.

    The switch to WAL is done here, before any pooled connection exists: connections
    that race to convert a brand-new file can each believe they hold the write lock.
    """
    if is_memory_sqlite(url) or url.query.get("uri") == "true" or url.database is None:
        return
    path = Path(url.database)
    if path.is_dir():
        raise ConfigError(f"cannot open the database {mask_url(url)!r}: {path} is a folder, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the folder {path.parent} for the database {mask_url(url)!r}: {exc.strerror}"
        ) from None
    # Processes starting together on a brand-new file (``--workers N``) race to convert it, and
    # SQLite answers the loser "database is locked" at once, without waiting for busy_timeout:
    # it tries again, as the file is WAL (or being made so) a moment later.
    deadline = time.monotonic() + _SQLITE_WAL_WAIT
    while True:
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=5.0)) as db:
                db.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise ConfigError(f"cannot open the database {mask_url(url)!r}: {exc}") from None
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the database {mask_url(url)!r}: {exc}") from None
        time.sleep(0.02)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module, which would not
    # BEGIN before DDL: migrations and batch writes are then truly atomic.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front, so that a writer which read first
    # waits (busy_timeout) for another instead of failing with "database is locked".
    mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE_LOCK) else ""
    connection.exec_driver_sql(f"BEGIN {mode}".strip())


def _postgres_connect_args(url: URL) -> tuple[URL, dict[str, Any]]:
    """Move server settings out of the query, where SQLAlchemy would pass them as connect() arguments."""
    asyncpg = importlib.import_module("asyncpg")
    known = set(inspect.signature(asyncpg.connect).parameters) | _PG_ADAPTER_OPTIONS
    settings = {name: value for name, value in url.query.items() if name not in known}
    bad = [name for name, value in settings.items() if not isinstance(value, str)]
    if bad:
        raise ConfigError(f"database URL {mask_url(url)!r}: {bad[0]} is given more than once")
    connect_args: dict[str, Any] = {}
    if settings:
        connect_args["server_settings"] = settings
    if "timeout" not in url.query:
        connect_args["timeout"] = _PG_CONNECT_TIMEOUT
    return url.difference_update_query(settings), connect_args


def create_engine(url: str) -> AsyncEngine:
    """The async engine for ``url``; nothing is opened until first use (see ``upgrade`` and ``ping``).

    Statement parameters are kept out of logs and error messages: they hold
    upstream keys and users' text.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite_file(parsed)
        engine = create_async_engine(parsed, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    parsed, connect_args = _postgres_connect_args(parsed)
    try:
        return create_async_engine(
            parsed, connect_args=connect_args, pool_pre_ping=True, hide_parameters=True
        )
    except ArgumentError as exc:
        raise ConfigError(f"database URL {mask_url(parsed)!r}: {exc}") from None


def describe_error(exc: BaseException, url: URL | None = None) -> str:
    """A one-line reason for a database failure, without the SQL or the password."""
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if url is not None and url.password:
        reason = reason.replace(str(url.password), "***")
    return reason


def migrations_dir() -> Path:
    """The Alembic scripts: beside the package in a checkout or editable install."""
    package = Path(alice_py.__file__).resolve().parent
    for candidate in (package.parent / "migrations", package / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ConfigError(f"the database migrations are missing: expected {package.parent / 'migrations'}")


def alembic_config() -> AlembicConfig:
    """Alembic's settings built in code, so no alembic.ini is needed at run time."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def _run_upgrade(connection: Connection, cfg: AlembicConfig, revision: str) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(target: str | AsyncEngine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``; safe to call on every start.

    Pass an engine rather than a URL for an in-memory SQLite database, which
    lives only as long as its engine. Raises ``ConfigError`` if the database
    can't be opened or upgraded. Instances starting together take turns: a
    database lock is held while the migrations run (Alembic's own state is
    process-wide, so this lock is also what keeps concurrent calls apart).
    """
    if isinstance(target, AsyncEngine):
        await _upgrade_engine(target, revision)
        return
    engine = create_engine(target)
    try:
        await _upgrade_engine(engine, revision)
    finally:
        await engine.dispose()


_REVISION = re.compile(r"^revision(?::[^=\n]*)?=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision(?::[^=\n]*)?=\s*(?:None|[\"']([^\"']+)[\"'])", re.M)


def head_revision() -> str | None:
    """The newest migration, read from the scripts' ``revision`` / ``down_revision`` lines
    without Alembic; None when that is not one plain chain (Alembic must decide)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (migrations_dir() / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        found, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if found is None or down is None:
            return None
        revisions.add(found.group(1))
        if down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


async def _at_head(connection: AsyncConnection) -> bool:
    """Whether the database is at the newest migration already: the usual case at a restart,
    answered with one query, so that the running service never loads Alembic (about 10 MB
    it would keep for its whole life, a fifth of an idle service: docs/performance.md)."""
    head = head_revision()
    if head is None:
        return False
    try:
        rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    except SQLAlchemyError:
        return False  # a new database (no table yet), or one Alembic will explain
    finally:
        await connection.rollback()
    return [row[0] for row in rows] == [head]


async def _upgrade_engine(engine: AsyncEngine, revision: str) -> None:
    connection = engine.connect()
    try:
        await connection.start()
    except DB_ERRORS as exc:
        raise ConfigError(
            f"cannot open the database {mask_url(engine.url)!r}: {describe_error(exc, engine.url)}"
        ) from None
    try:
        if revision == "head" and await _at_head(connection):
            return
        await _migrate(connection, revision)
    finally:
        await connection.close()


async def _migrate(connection: AsyncConnection, revision: str) -> None:
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    url = connection.engine.url
    try:
        await connection.execution_options(**{_WRITE_LOCK: True})
        async with connection.begin():
            await connection.run_sync(_run_upgrade, alembic_config(), revision)
    except (SQLAlchemyError, CommandError, RevisionError) as exc:
        reason = describe_error(exc, url)
        if "Can't locate revision" in reason:
            reason += " (was the database made by a newer alice-py?)"
        target = f"the database {mask_url(url)!r} to revision {revision}"
        raise ConfigError(f"cannot upgrade {target}: {reason}") from None


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at, or None for a database never upgraded."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


async def ping(engine: AsyncEngine, within: float = 5.0) -> str | None:
    """None when the database answers a query, else a reason fit for a readiness probe."""
    try:
        async with asyncio.timeout(within):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return f"database did not answer within {within:g} s"
    except (SQLAlchemyError, OSError) as exc:
        return f"database unavailable: {describe_error(exc, engine.url)}"
    return None
