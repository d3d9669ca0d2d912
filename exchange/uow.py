"""Unit of work: ``async with uow: ...; await uow.commit()``. Leaving the block without
a commit rolls back, so a failure anywhere leaves the whole change or nothing."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from .db import Database

__all__ = ["UnitOfWork"]


class UnitOfWork:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._db.sessions()
        await self._session.begin()
        return self

    async def commit(self) -> None:
        await self.session.commit()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if session.in_transaction():
                await session.rollback()
        finally:
            await session.close()
