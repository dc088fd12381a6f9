"""SQL for timebanks, participants, accounts and categories."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.errors import NotFound
from timebank.participants.schemas import TimebankPolicy, TimebankRecord


async def insert_timebank(
    conn: AsyncConnection, slug: str, name: str, policy: TimebankPolicy
) -> TimebankRecord:
    timebank_id = (
        await conn.execute(
            text(
                "INSERT INTO timebanks (slug, name, default_floor_minutes,"
                " default_ceiling_minutes, max_exchange_minutes, welcome_grant_minutes)"
                " VALUES (:slug, :name, :floor, :ceiling, :maximum, :grant) RETURNING id"
            ),
            {
                "slug": slug,
                "name": name,
                "floor": policy.default_floor_minutes,
                "ceiling": policy.default_ceiling_minutes,
                "maximum": policy.max_exchange_minutes,
                "grant": policy.welcome_grant_minutes,
            },
        )
    ).scalar_one()
    fund_id = (
        await conn.execute(
            text(
                "INSERT INTO accounts (timebank_id, system_role)"
                " VALUES (:timebank_id, 'community_fund') RETURNING id"
            ),
            {"timebank_id": timebank_id},
        )
    ).scalar_one()
    return TimebankRecord(
        id=timebank_id, slug=slug, name=name, community_fund_account_id=fund_id, policy=policy
    )


async def insert_categories(conn: AsyncConnection, timebank_id: int, names: dict[str, str]) -> None:
    await conn.execute(
        text(
            "INSERT INTO categories (timebank_id, slug, name) VALUES (:timebank_id, :slug, :name)"
        ),
        [{"timebank_id": timebank_id, "slug": slug, "name": name} for slug, name in names.items()],
    )


async def get_timebank(conn: AsyncConnection, slug: str) -> TimebankRecord:
    row = (
        await conn.execute(
            text(
                "SELECT t.id, t.slug, t.name, t.default_floor_minutes, t.default_ceiling_minutes,"
                " t.max_exchange_minutes, t.welcome_grant_minutes, a.id AS fund_id"
                " FROM timebanks t JOIN accounts a"
                "   ON a.timebank_id = t.id AND a.system_role = 'community_fund'"
                " WHERE t.slug = :slug"
            ),
            {"slug": slug},
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"timebank {slug!r} not found")
    return TimebankRecord(
        id=row.id,
        slug=row.slug,
        name=row.name,
        community_fund_account_id=row.fund_id,
        policy=TimebankPolicy(
            default_floor_minutes=row.default_floor_minutes,
            default_ceiling_minutes=row.default_ceiling_minutes,
            max_exchange_minutes=row.max_exchange_minutes,
            welcome_grant_minutes=row.welcome_grant_minutes,
        ),
    )


async def insert_participant(
    conn: AsyncConnection,
    timebank: TimebankRecord,
    kind: str,
    display_name: str,
    joined_on: date | None,
) -> tuple[int, date, int]:
    """Insert a participant and their account (limits from the timebank's policy)."""
    row = (
        await conn.execute(
            text(
                "INSERT INTO participants (timebank_id, kind, display_name, joined_on)"
                " VALUES (:timebank_id, :kind, :display_name, coalesce(:joined_on, current_date))"
                " RETURNING id, joined_on"
            ),
            {
                "timebank_id": timebank.id,
                "kind": kind,
                "display_name": display_name,
                "joined_on": joined_on,
            },
        )
    ).one()
    account_id = (
        await conn.execute(
            text(
                "INSERT INTO accounts (timebank_id, participant_id, floor, ceiling)"
                " VALUES (:timebank_id, :participant_id, :floor, :ceiling) RETURNING id"
            ),
            {
                "timebank_id": timebank.id,
                "participant_id": row.id,
                "floor": timebank.policy.default_floor_minutes,
                "ceiling": timebank.policy.default_ceiling_minutes,
            },
        )
    ).scalar_one()
    return row.id, row.joined_on, account_id
