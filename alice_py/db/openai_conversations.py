"""Conversations of OpenAI's Conversations API and their items, each owned by one client key.

A conversation is kept until it is deleted (no retention). Its items keep the order they were
added in (``seq``); the item objects are stored as the client gets them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alice_py.db.models import OpenAIConversationItemRow as ItemRow
from alice_py.db.models import OpenAIConversationRow as ConvRow

Item = dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredConversation:
    id: str
    created_at: int
    metadata: dict[str, Any]

    def as_object(self) -> dict[str, Any]:
        """The SDK's ``Conversation``."""
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class ConversationPage:
    data: list[StoredConversation]
    has_more: bool


_COLUMNS = (ConvRow.id, ConvRow.created_at, ConvRow.metadata_.label("meta"))


def _conversation(row: Any) -> StoredConversation:
    return StoredConversation(id=row.id, created_at=row.created_at, metadata=row.meta)


class OpenAIConversationRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, owner: str, conversation: StoredConversation, items: list[Item]) -> None:
        row = {
            "id": conversation.id,
            "owner": owner,
            "created_at": conversation.created_at,
            "metadata": conversation.metadata,
        }
        async with self._engine.begin() as connection:
            await connection.execute(insert(ConvRow), [row])
            await append_items(connection, conversation.id, items)

    async def get(self, owner: str, conversation_id: str) -> StoredConversation | None:
        """The conversation, unless it is unknown or another owner's (both alike)."""
        async with self._engine.connect() as connection:
            return await self._get(connection, owner, conversation_id)

    @staticmethod
    async def _get(
        connection: AsyncConnection, owner: str, conversation_id: str
    ) -> StoredConversation | None:
        query = select(*_COLUMNS).where(
            ConvRow.id == conversation_id, ConvRow.owner == owner
        )
        found = (await connection.execute(query)).first()
        return None if found is None else _conversation(found)

    async def update_metadata(
        self, owner: str, conversation_id: str, metadata: dict[str, Any]
    ) -> StoredConversation | None:
        query = (
            update(ConvRow)
            .where(ConvRow.id == conversation_id, ConvRow.owner == owner)
            .values({ConvRow.metadata_: metadata})
        )
        async with self._engine.begin() as connection:
            if not (await connection.execute(query)).rowcount:
                return None
            return await self._get(connection, owner, conversation_id)

    async def delete(self, owner: str, conversation_id: str) -> bool:
        """The conversation and its items, in one transaction."""
        query = delete(ConvRow).where(ConvRow.id == conversation_id, ConvRow.owner == owner)
        async with self._engine.begin() as connection:
            if not (await connection.execute(query)).rowcount:
                return False
            await connection.execute(delete(ItemRow).where(ItemRow.conversation_id == conversation_id))
        return True

    async def page(self, owner: str, after: str | None, limit: int) -> ConversationPage | None:
        """The owner's conversations, newest first (ties of ``created_at`` in creation order),
        ``limit`` of them after the one with id ``after``; ``None`` when ``after`` is not theirs."""
        query = select(*_COLUMNS).where(ConvRow.owner == owner)
        async with self._engine.connect() as connection:
            if after is not None:
                cursor = (
                    await connection.execute(
                        select(ConvRow.created_at, ConvRow.seq).where(
                            ConvRow.id == after, ConvRow.owner == owner
                        )
                    )
                ).first()
                if cursor is None:
                    return None
                query = query.where(
                    or_(
                        ConvRow.created_at < cursor.created_at,
                        and_(ConvRow.created_at == cursor.created_at, ConvRow.seq > cursor.seq),
                    )
                )
            query = query.order_by(ConvRow.created_at.desc(), ConvRow.seq.asc()).limit(limit + 1)
            rows = (await connection.execute(query)).all()
        return ConversationPage([_conversation(row) for row in rows[:limit]], has_more=len(rows) > limit)

    async def items(self, owner: str, conversation_id: str) -> list[Item] | None:
        """Every item of the conversation, oldest first; ``None`` if the conversation is not theirs."""
        async with self._engine.connect() as connection:
            if await self._get(connection, owner, conversation_id) is None:
                return None
            return await conversation_items(connection, conversation_id)

    async def add_items(self, owner: str, conversation_id: str, items: list[Item]) -> bool:
        async with self._engine.begin() as connection:
            if await self._get(connection, owner, conversation_id) is None:
                return False
            await append_items(connection, conversation_id, items)
        return True

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> StoredConversation | None:
        """The conversation after the item went; ``None`` when either is unknown (or not theirs)."""
        async with self._engine.begin() as connection:
            conversation = await self._get(connection, owner, conversation_id)
            if conversation is None:
                return None
            query = delete(ItemRow).where(ItemRow.conversation_id == conversation_id, ItemRow.id == item_id)
            if not (await connection.execute(query)).rowcount:
                return None
        return conversation


async def conversation_items(connection: AsyncConnection, conversation_id: str) -> list[Item]:
    query = select(ItemRow.item).where(ItemRow.conversation_id == conversation_id).order_by(ItemRow.seq)
    return [row.item for row in await connection.execute(query)]


async def append_items(connection: AsyncConnection, conversation_id: str, items: list[Item]) -> None:
    """Add ``items`` at the end, in order (part of the caller's transaction)."""
    if items:
        rows = [{"conversation_id": conversation_id, "id": item["id"], "item": item} for item in items]
        await connection.execute(insert(ItemRow), rows)


async def conversation_exists(connection: AsyncConnection, conversation_id: str) -> bool:
    found = await connection.execute(select(ConvRow.seq).where(ConvRow.id == conversation_id))
    return found.first() is not None
