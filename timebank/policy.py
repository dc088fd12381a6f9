"""A timebank's policy, the one type for it: limits for new accounts, the most one exchange may
count, welcome hours, and how exchanges are confirmed and approved. The services read it from
``timebanks``, requests are checked against it and answers show it. Its defaults are the
database's (tests/test_policy.py holds them equal); the rules that read it are in
``timebank/exchanges/policy.py``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from timebank.fields import JsonBool, WholeNumber

ApprovalMode = Literal["coordinator", "automatic", "automatic_unless"]
# How a member sees their own balance: the net figure, or the hours given and received with no
# net figure (a minus sign reads as debt; coordinators always see the balance).
BalanceDisplay = Literal["balance", "given_received"]

# Far beyond any real timebank (about 19 years of hours), well inside PostgreSQL's bigint.
MAX_POLICY_MINUTES = 10_000_000
MAX_BACKDATED_DAYS = 36_500


class Policy(BaseModel):
    """The policy of a timebank, each field with its default; checked as a whole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_floor_minutes: WholeNumber = Field(
        default=-600, le=0, ge=-MAX_POLICY_MINUTES, description="floor of new accounts (≤ 0)"
    )
    default_ceiling_minutes: WholeNumber = Field(
        default=6000, ge=0, le=MAX_POLICY_MINUTES, description="ceiling of new accounts (≥ 0)"
    )
    max_exchange_minutes: WholeNumber = Field(
        default=720, gt=0, le=MAX_POLICY_MINUTES, description="the most one exchange may count"
    )
    welcome_grant_minutes: WholeNumber = Field(
        default=0, ge=0, le=MAX_POLICY_MINUTES, description="hours a new participant starts with"
    )
    confirmation_required: JsonBool = Field(
        default=True, description="the other party confirms an exchange before approval"
    )
    approval_mode: ApprovalMode = Field(
        default="coordinator",
        description="who approves: a coordinator, automatic, or automatic unless a rule fires",
    )
    review_above_minutes: WholeNumber | None = Field(
        default=None,
        gt=0,
        le=MAX_POLICY_MINUTES,
        description="rule: exchanges above this many minutes",
    )
    review_backdated_days: WholeNumber | None = Field(
        default=None,
        ge=0,
        le=MAX_BACKDATED_DAYS,
        description="rule: exchanges dated more than this many days back",
    )
    review_organisation: JsonBool = Field(
        default=False, description="rule: exchanges that involve an organisation"
    )
    review_first_exchange: JsonBool = Field(
        default=False, description="rule: a participant's first exchange"
    )

    balance_display: BalanceDisplay = Field(
        default="balance",
        description="what a member sees of their own balance: the net figure (balance), or"
        " the hours they gave and received with no net figure (given_received)",
    )

    @model_validator(mode="after")
    def _welcome_grant_within_ceiling(self) -> Policy:
        if self.welcome_grant_minutes > self.default_ceiling_minutes:
            raise ValueError("welcome_grant_minutes must not be above default_ceiling_minutes")
        return self

    def as_dict(self) -> dict[str, Any]:
        """The policy's fields alone (not those a request adds), named as their columns."""
        return {name: getattr(self, name) for name in POLICY_FIELDS}

    def to_policy(self) -> Policy:
        """The policy alone, out of a request that carries more (a new timebank's name)."""
        return self if type(self) is Policy else Policy(**self.as_dict())


# The columns of ``timebanks`` that hold the policy.
POLICY_FIELDS = tuple(Policy.model_fields)
