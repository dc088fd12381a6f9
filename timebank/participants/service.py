"""Creating timebanks and enrolling participants, each with an account and welcome hours."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.ledger import repository as ledger_repository
from timebank.ledger.service import run_in_transaction
from timebank.participants import repository
from timebank.participants.schemas import (
    DEFAULT_CATEGORIES,
    ParticipantKind,
    ParticipantRecord,
    TimebankPolicy,
    TimebankRecord,
)


class Participants:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_timebank(
        self, slug: str, name: str, policy: TimebankPolicy | None = None
    ) -> TimebankRecord:
        """Create a timebank with its community fund account and the default categories."""

        async def work(conn):
            record = await repository.insert_timebank(conn, slug, name, policy or TimebankPolicy())
            await repository.insert_categories(conn, record.id, DEFAULT_CATEGORIES)
            return record

        return await run_in_transaction(self._engine, work)

    async def get_timebank(self, slug: str) -> TimebankRecord:
        async with self._engine.connect() as conn:
            return await repository.get_timebank(conn, slug)

    async def enrol(
        self,
        timebank: TimebankRecord,
        kind: ParticipantKind,
        display_name: str,
        *,
        joined_on: date | None = None,
    ) -> ParticipantRecord:
        """Enrol a participant: an account with the timebank's limits, and its welcome grant
        from the community fund, in one transaction."""

        async def work(conn):
            participant_id, joined, account_id = await repository.insert_participant(
                conn, timebank, kind, display_name, joined_on
            )
            if timebank.policy.welcome_grant_minutes > 0:
                await ledger_repository.post_transfer(
                    conn,
                    timebank_id=timebank.id,
                    debit_account_id=timebank.community_fund_account_id,
                    credit_account_id=account_id,
                    minutes=timebank.policy.welcome_grant_minutes,
                    kind="grant",
                    memo="Welcome hours",
                    key=None,
                )
            return ParticipantRecord(
                id=participant_id,
                timebank_id=timebank.id,
                kind=kind,
                display_name=display_name,
                joined_on=joined,
                account_id=account_id,
            )

        return await run_in_transaction(self._engine, work)
