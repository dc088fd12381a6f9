"""Part of the ledger's one door (``timebank.ledger.repository``): the writes that move minutes
to or from the timebank's community pot (its community fund): a member's gift, a
coordinator's grant, an opening balance, a participant leaving. Each is one call of its
PL/pgSQL function (one round trip, accounts locked in ascending id order) on the caller's
connection, with an optional idempotency key (``timebank.ledger.idempotency``), and returns
what it wrote (on a replay, what was first written). Participants are named by id; None names
the pot. Notes and reasons go in ``gifts``, never in the append-only ledger."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypedDict, TypeVar, Unpack, cast

from sqlalchemy import func, literal_column, select

from timebank.db.compose import Expr, arg, compiled_sql, field
from timebank.ledger.repository import Connection, call_keyed
from timebank.ledger.schemas import (
    DepartureRecord,
    GiftRecord,
    IdempotencyKey,
    OpeningRecord,
    PotWrite,
    TransferRecord,
)

__all__ = ["gift", "leave", "set_opening"]

R = TypeVar("R")


class Author(TypedDict, total=False):
    """Who writes (a user; none for the service itself) and under which idempotency key."""

    user_id: int | None
    key: IdempotencyKey | None


def _columns(part: str, record: type[Any]) -> list[Expr]:
    """The columns of composite ``r.part`` read as ``record``, each named ``part_field``."""
    composite: Expr = literal_column(f"r.{part}")
    return [field(composite, f.name).label(f"{part}_{f.name}") for f in fields(record)]


def _read(row: Mapping[str, Any], part: str, record: Callable[..., R]) -> R | None:
    """``record`` of the columns ``_columns`` named (None for a null composite)."""
    names = [f.name for f in fields(cast(Any, record))]
    values = {name: row[f"{part}_{name}"] for name in names}
    return None if values[names[0]] is None else record(**values)


def _statement(function: str, arguments: int, part: str, record: type[Any]) -> str:
    """The call of ``function`` with ``arguments`` parameters, its ``transfer`` and its record
    ``part`` read column by column (compiled once, at import)."""
    call = getattr(func, function)(*(arg(n) for n in range(1, arguments + 1))).alias("r")
    columns = [literal_column("r.replayed"), *_columns("transfer", TransferRecord)]
    return compiled_sql(select(*columns, *_columns(part, record)).select_from(call))


_GIFT = _statement("ledger_gift", 10, "gift", GiftRecord)
_SET_OPENING = _statement("ledger_set_opening", 7, "opening", OpeningRecord)
_LEAVE = _statement("ledger_leave", 7, "departure", DepartureRecord)


def _request(timebank_id: int, by: Author, **values: Any) -> dict[str, Any]:
    """A function's arguments in its order, named as fingerprinted: the timebank, ``values``,
    then who writes."""
    return {"timebank_id": timebank_id, **values, "user_id": by.get("user_id")}


async def _write(
    conn: Connection,
    statement: str,
    operation: str,
    request: Mapping[str, Any],
    key: IdempotencyKey | None,
    part: str,
    record: Callable[..., R],
) -> PotWrite[R]:
    """Call the function of ``statement`` with ``request``'s values and the key's parts; what
    it wrote, its record read as ``part``."""
    row = await call_keyed(conn, statement, operation, request, key)
    written = _read(row, part, record)
    assert written is not None, "a write of the pot's kinds returns its record or raises"
    return PotWrite(written, _read(row, "transfer", TransferRecord), row["replayed"])


async def gift(
    conn: Connection,
    timebank_id: int,
    from_participant_id: int | None,
    to_participant_id: int | None,
    minutes: int,
    *,
    note: str | None = None,
    **by: Unpack[Author],
) -> PotWrite[GiftRecord]:
    """A member's gift of ``minutes`` from their own account to another member or to the pot
    (``to_participant_id`` None), posted at once: refused past the giver's floor (or the
    receiver's ceiling), or to someone who left. From the pot (``from_participant_id`` None),
    it is a coordinator's grant to a member, ``note`` its reason (the pot has no limits)."""
    request = _request(
        timebank_id,
        by,
        kind="gift" if from_participant_id is not None else "grant",
        from_participant_id=from_participant_id,
        to_participant_id=to_participant_id,
        minutes=minutes,
        note=note,
    )
    return await _write(conn, _GIFT, "gift", request, by.get("key"), "gift", GiftRecord)


async def set_opening(
    conn: Connection, timebank_id: int, participant_id: int, minutes: int, **by: Unpack[Author]
) -> PotWrite[OpeningRecord]:
    """A participant's opening balance against the pot, once per account (either sign, the
    account's limits holding): the same value again changes nothing (``replayed``), another
    is refused (InvalidTransition)."""
    request = _request(timebank_id, by, participant_id=participant_id, minutes=minutes)
    return await _write(
        conn, _SET_OPENING, "set_opening", request, by.get("key"), "opening", OpeningRecord
    )


async def leave(
    conn: Connection,
    timebank_id: int,
    participant_id: int,
    *,
    balance_to: int | None = None,
    **by: Unpack[Author],
) -> PotWrite[DepartureRecord]:
    """A participant leaves: their whole balance to the pot or to the member ``balance_to``
    names (a debt always to the pot), and their account closed. Refused while anything is
    pending on it (InvalidTransition)."""
    request = _request(timebank_id, by, participant_id=participant_id, balance_to=balance_to)
    return await _write(conn, _LEAVE, "leave", request, by.get("key"), "departure", DepartureRecord)
