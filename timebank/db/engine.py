"""Turning settings into a database URL and an async SQLAlchemy engine."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from timebank.db import embedded
from timebank.settings import Settings


def sqlalchemy_url(url: str) -> str:
    """The same server, spelled for SQLAlchemy's asyncpg dialect."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("TIMEBANK_DATABASE_URL must be a postgresql:// or postgresql+asyncpg:// URL")


def asyncpg_dsn(url: str) -> str:
    """The same server, spelled for asyncpg itself."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+asyncpg://") :]


def resolve_database_url(settings: Settings) -> tuple[str, bool]:
    """Return ``(url, embedded)``: the configured server, or a started embedded one."""
    if settings.database_url:
        return sqlalchemy_url(settings.database_url), False
    return embedded.start(settings.data_dir), True


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=False,  # a dropped connection is retried by the ledger instead
    )
