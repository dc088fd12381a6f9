"""A timebank's policy is one type (timebank/policy.py): its defaults are the database's, and
the API's request, patch and answer models carry exactly its fields."""

from __future__ import annotations

import asyncpg
import pytest
from pydantic import ValidationError

from tests.conftest import unique_slug
from timebank.exchanges.schemas import Policy as ExchangesPolicy
from timebank.participants.schemas import (
    TimebankCreate,
    TimebankPolicy,
    TimebankPublic,
    TimebankUpdate,
)
from timebank.policy import MAX_POLICY_MINUTES, POLICY_FIELDS, Policy


async def test_the_default_policy_is_the_database_default(raw: asyncpg.Connection):
    """A timebank created without a policy, on the freshly migrated test database, holds the
    very policy ``Policy()`` describes."""
    transaction = raw.transaction()
    await transaction.start()
    try:
        row = await raw.fetchrow(
            f"INSERT INTO timebanks (slug, name) VALUES ($1, 'Defaults')"
            f" RETURNING {', '.join(POLICY_FIELDS)}",
            unique_slug("defaults"),
        )
    finally:
        await transaction.rollback()
    assert row is not None
    assert dict(row) == Policy().as_dict()


def test_every_model_of_a_timebank_carries_the_one_policy():
    assert TimebankPolicy is Policy and ExchangesPolicy is Policy
    assert issubclass(TimebankCreate, Policy) and issubclass(TimebankPublic, Policy)
    # A change names any policy field, and only those besides the name.
    assert set(TimebankUpdate.model_fields) == {"name", *POLICY_FIELDS}


def test_a_request_policy_is_checked_and_the_policy_alone_is_kept():
    data = TimebankCreate(slug="riverside", name="Riverside", max_exchange_minutes=240)
    policy = data.to_policy()
    assert type(policy) is Policy
    assert policy == Policy(max_exchange_minutes=240)
    assert set(policy.as_dict()) == set(POLICY_FIELDS)
    with pytest.raises(ValidationError):
        Policy(default_ceiling_minutes=MAX_POLICY_MINUTES + 1)
    with pytest.raises(ValidationError):
        Policy(welcome_grant_minutes=120, default_ceiling_minutes=60)
