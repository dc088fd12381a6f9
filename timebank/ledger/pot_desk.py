"""Gifts, grants, leaving, opening balances and the community pot for the people allowed: a
member gifts from their own account only; a coordinator grants from the pot (never to their
own participant), sets opening balances (never their own) and sees the pot; a participant
leaves by themselves or a coordinator records it for them. Funders do none of it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth.schemas import TimebankAccess
from timebank.db.transactions import raw_connection
from timebank.errors import (
    Forbidden,
    InvalidTransition,
    LimitExceeded,
    ValidationFailed,
    field_error,
)
from timebank.hours import format_minutes
from timebank.ledger import accounts
from timebank.ledger.pot_schemas import (
    DeparturePublic,
    GiftCreate,
    GiftPublic,
    LeaveRequest,
    OpeningBalancePublic,
    OpeningBalanceUpdate,
    PotMovementPublic,
    PotPublic,
    StandingPublic,
)
from timebank.ledger.schemas import DepartureRecord, GiftRecord, IdempotencyKey, OpeningRecord
from timebank.ledger.service import Ledger


def key_of(access: TimebankAccess, key: str | None) -> IdempotencyKey | None:
    """A client's idempotency key, as the caller's (``user:ID``, as for exchanges)."""
    return IdempotencyKey(f"user:{access.principal.user_id}", key) if key is not None else None


def require_manager(access: TimebankAccess, what: str) -> None:
    if not access.can_manage:
        raise Forbidden(f"only a coordinator may {what}")


class PotDesk:
    """Gifts, grants, leaving, opening balances and the pot, each refused to whom it is not
    for before the ledger is asked; the ledger refuses the rest (limits, closed accounts,
    someone of another timebank, pending exchanges)."""

    def __init__(self, engine: AsyncEngine, ledger: Ledger) -> None:
        self._engine = engine
        self._ledger = ledger

    async def gift(
        self, access: TimebankAccess, data: GiftCreate, key: str | None = None
    ) -> tuple[GiftPublic, bool]:
        """Gift minutes from one's own account to a member or the pot, or (a coordinator)
        grant them from the pot to a member with a reason; posted at once. Answers the gift
        and whether it is a replay of a request under the same key."""
        access.require_active("give or grant hours")
        if data.from_id is None:
            _check_grant(access, data)
        elif access.party_id is None:
            raise Forbidden("gifts come from a member's own account, and you have none here")
        elif data.from_id != access.party_id:
            raise Forbidden("you can only give hours from your own account")
        if data.from_id is not None and data.from_id == data.to_id:
            raise ValidationFailed("nobody gives hours to themselves", field="to_id")
        if data.to_id is not None:
            await self._require_active(access, data.to_id)
        try:
            written = await self._ledger.gift(
                access.timebank_id,
                data.from_id,
                data.to_id,
                data.minutes,
                note=data.note,
                user_id=access.principal.user_id,
                key=key_of(access, key),
            )
        except LimitExceeded as refused:
            raise await self._named_limit(access, data, refused) from refused
        return _gift_public(written.record), written.replayed

    async def _require_active(self, access: TimebankAccess, participant_id: int) -> None:
        async with raw_connection(self._engine) as conn:
            deactivated = await accounts.is_deactivated(conn, access.timebank_id, participant_id)
        if deactivated:
            raise InvalidTransition(
                f"participant {participant_id} is deactivated in this timebank; a coordinator"
                " reactivates them before they are given hours",
                participant_id=participant_id,
                errors=[field_error("to_id", "is deactivated")],
            )

    async def _named_limit(
        self, access: TimebankAccess, data: GiftCreate, refused: LimitExceeded
    ) -> LimitExceeded:
        """The refusal of a gift past a limit, naming the limit and what still fits."""
        if data.from_id is None:  # the pot has no limits: the receiver's ceiling refused it
            return LimitExceeded(
                "this would take the receiver above their ceiling", limit="ceiling"
            )
        async with raw_connection(self._engine) as conn:
            account_id = await accounts.account_of(conn, access.timebank_id, data.from_id)
            giver = await accounts.get_balance(conn, access.timebank_id, account_id)
            display = await accounts.balance_display(conn, access.timebank_id)
        available = giver.available_minutes
        if display == "given_received" and not access.can_manage:
            # What still fits, with the floor, would give away the net figure the timebank
            # does not show its members.
            return LimitExceeded(
                "this is more than your account allows just now (pending exchanges count)",
                limit="floor" if available is not None and data.minutes > available else "ceiling",
            )
        if available is not None and data.minutes > available:
            floor = giver.floor_minutes or 0
            return LimitExceeded(
                f"you can give at most {format_minutes(max(available, 0))} "
                f"(your floor is {format_minutes(floor)}, pending exchanges count)",
                limit="floor",
                floor_minutes=floor,
                available_minutes=max(available, 0),
            )
        return LimitExceeded(refused.detail, limit="ceiling")

    async def leave(
        self,
        access: TimebankAccess,
        participant_id: int,
        data: LeaveRequest,
        key: str | None = None,
    ) -> tuple[DeparturePublic, bool]:
        """Record a participant leaving (themselves, or a coordinator for them): their
        balance to the pot or a member, their account closed. Refused while anything is
        pending on it."""
        if not access.can_manage and (access.party_id is None or access.party_id != participant_id):
            raise Forbidden("a participant records their own leaving, or a coordinator does")
        mine = access.participant_id
        if mine is not None and mine != participant_id and data.balance_to == mine:
            # As with grants and limits: nobody moves minutes to themselves on another's behalf.
            raise Forbidden(
                "someone else's balance does not go to you when you record their leaving"
            )
        written = await self._ledger.leave(
            access.timebank_id,
            participant_id,
            balance_to=data.balance_to,
            user_id=access.principal.user_id,
            key=key_of(access, key),
        )
        return _departure_public(written.record), written.replayed

    async def set_opening(
        self,
        access: TimebankAccess,
        participant_id: int,
        data: OpeningBalanceUpdate,
        key: str | None = None,
    ) -> tuple[OpeningBalancePublic, bool]:
        """Set a participant's opening balance against the pot, once (coordinators, never for
        their own participant): the same value again changes nothing, another is refused."""
        require_manager(access, "set an opening balance")
        if access.participant_id == participant_id:
            raise Forbidden("someone else must set the opening balance of your own account")
        written = await self._ledger.set_opening(
            access.timebank_id,
            participant_id,
            data.minutes,
            user_id=access.principal.user_id,
            key=key_of(access, key),
        )
        return _opening_public(participant_id, written.record), written.replayed

    async def standing(self, access: TimebankAccess, participant_id: int) -> StandingPublic:
        """A participant's opening balance and leaving, if any (coordinators)."""
        require_manager(access, "see a participant's opening balance and leaving")
        async with raw_connection(self._engine) as conn:
            row = await accounts.standing(conn, access.timebank_id, participant_id)
        return StandingPublic(participant_id=participant_id, **row)

    async def pot(
        self, access: TimebankAccess, *, before_version: int | None = None, limit: int = 50
    ) -> PotPublic:
        """The community pot's balance and movements, newest first (coordinators)."""
        require_manager(access, "see the community pot")
        async with raw_connection(self._engine) as conn:
            account_id = await accounts.pot_account(conn, access.timebank_id)
            balance = await accounts.get_balance(conn, access.timebank_id, account_id)
            rows = await accounts.pot_movements(
                conn, access.timebank_id, account_id, before_version=before_version, limit=limit
            )
        movements = [PotMovementPublic.model_validate(dict(row)) for row in rows]
        next_before = movements[-1].account_version if len(movements) == limit else None
        return PotPublic(
            account_id=account_id,
            balance_minutes=balance.balance_minutes,
            movements=movements,
            next_before_version=next_before if next_before != 1 else None,
        )


def _check_grant(access: TimebankAccess, data: GiftCreate) -> None:
    require_manager(access, "grant hours from the community pot")
    if data.to_id is None:
        raise ValidationFailed("a grant goes from the community pot to a member", field="to_id")
    if access.participant_id is not None and data.to_id == access.participant_id:
        raise Forbidden("another coordinator must grant hours to your own account")
    if data.note is None:
        raise ValidationFailed("say why the pot grants these hours", field="note")


def _gift_public(record: GiftRecord) -> GiftPublic:
    return GiftPublic(
        id=record.id,
        kind="grant" if record.kind == "grant" else "gift",
        from_id=record.from_participant_id,
        to_id=record.to_participant_id,
        minutes=record.minutes,
        note=record.note,
        transfer_id=record.transfer_id,
        created_at=record.created_at,
    )


def _departure_public(record: DepartureRecord) -> DeparturePublic:
    return DeparturePublic(
        participant_id=record.participant_id,
        account_id=record.account_id,
        balance_to=record.balance_to_participant_id,
        balance_minutes=record.balance_minutes,
        transfer_id=record.transfer_id,
        left_at=record.left_at,
    )


def _opening_public(participant_id: int, record: OpeningRecord) -> OpeningBalancePublic:
    return OpeningBalancePublic(
        participant_id=participant_id,
        account_id=record.account_id,
        minutes=record.minutes,
        transfer_id=record.transfer_id,
        set_at=record.set_at,
    )
