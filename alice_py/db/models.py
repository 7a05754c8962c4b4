"""The tables, as typed declarative models.

They must match what ``migrations/`` builds: a test compares the two. Change a
table here and add a migration in the same commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Double, Integer, LargeBinary, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Fixed constraint names keep migrations and models comparable on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHARE_ID_LENGTH = 8
CONVERSATION_ID_LENGTH = 64
KIND_LENGTH = 32


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ShareRow(Base):
    """A snapshot of a conversation that anyone with the id may read."""

    __tablename__ = "shares"

    id: Mapped[str] = mapped_column(String(SHARE_ID_LENGTH), primary_key=True)
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    sentences: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The live conversation of a share with an id of its own ([shares] separate_ids), so that
    # storing it again replaces that share; NULL when the share's id is the conversation's.
    conversation_id: Mapped[str | None] = mapped_column(
        String(CONVERSATION_ID_LENGTH), nullable=True, unique=True, index=True
    )


class ConversationRow(Base):
    """A live conversation saved at shutdown (or by write-behind) so a restart resumes it."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(CONVERSATION_ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(KIND_LENGTH), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # Seconds since the epoch, as the engine's clock gives them.
    last_active: Mapped[float] = mapped_column(Double, nullable=False)
    expires_at: Mapped[float] = mapped_column(Double, nullable=False, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class UpstreamKeyRow(Base):
    """An upstream API key added at run time through the admin API."""

    __tablename__ = "upstream_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    upstream: Mapped[str | None] = mapped_column(String(128), nullable=True)
    """The ``[[upstreams]]`` name the key was added to; NULL (stored before 0007): the first one."""


class HealthProbeRow(Base):
    """Written by the periodic health check (``db.health``): proof the database takes writes."""

    __tablename__ = "health_probe"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    written_at: Mapped[float] = mapped_column(Double, nullable=False)


class ResponseRow(Base):
    """A stored response of ``POST /v1/responses``: the node of its branch, self-contained.

    ``history`` is the path of items before this response's input (from the responses it
    continues), so a response stays whole when one it continued expires or is deleted."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # sha256 of the client key that made it: another key must not see it.
    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[float] = mapped_column(Double, nullable=False)
    expires_at: Mapped[float] = mapped_column(Double, nullable=False, index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    input_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)


class UsageRow(Base):
    """Tokens the answers of conversations used, summed per upstream key and per client
    (``usage.UsageBook``). ``name`` is a digest or an address, never a secret; ``label``
    what the admin sees (a masked key)."""

    __tablename__ = "usage_totals"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    label: Mapped[str] = mapped_column(String(80), nullable=False)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    answers: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class OpenAIConversationRow(Base):
    """A conversation of OpenAI's Conversations API (``/v1/conversations``): kept until deleted."""

    __tablename__ = "openai_conversations"

    # Creation order, for listing (ties of ``created_at``, whole seconds as OpenAI shows them).
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # sha256 of the client key that made it: another key must not see it.
    owner: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, nullable=False)


class OpenAIConversationItemRow(Base):
    """One item of a conversation, in the order they were added (``seq``)."""

    __tablename__ = "openai_conversation_items"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    id: Mapped[str] = mapped_column(String(64), nullable=False)
    item: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class ResponseRunRow(Base):
    """A background response being made: which instance runs it, and when it last said so.

    The row lives while the response runs; one whose ``heartbeat_at`` is stale belongs to an
    instance that died, and its response is marked failed (``responses.background``)."""

    __tablename__ = "response_runs"

    response_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance: Mapped[str] = mapped_column(String(64), nullable=False)
    heartbeat_at: Mapped[float] = mapped_column(Double, nullable=False, index=True)


class ResponseKeyRow(Base):
    """An ``Idempotency-Key`` of ``POST /v1/responses`` and the response it was answered
    (``db.response_keys``): a repeat of the request is answered this body, not made again."""

    __tablename__ = "response_keys"

    # sha256 of the client key: keys belong to their client key.
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # sha256 of the request body (canonical JSON): the same key with another body is refused.
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    expires_at: Mapped[float] = mapped_column(Double, nullable=False, index=True)


class AdminSessionRow(Base):
    """A logged-in admin page session (``db.admin_sessions``), shared by every process and
    instance on this database: a login on one is a login on all, a logout (the row deleted)
    ends it on all."""

    __tablename__ = "admin_sessions"

    # sha256 of the session id: someone who reads the database cannot take over a session.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Seconds since the epoch (a wall clock: every process agrees on it).
    expires_at: Mapped[float] = mapped_column(Double, nullable=False, index=True)


class ServiceSecretRow(Base):
    """A secret the service generated once for all its processes (the admin cookie's key):
    the first process to start writes it, every other one reads the same."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), nullable=False)
