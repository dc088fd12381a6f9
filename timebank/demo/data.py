"""The demo timebank's data: its people and their words (``people.toml``, read here), its
policy, and how many of its exchanges end in each state. What ``timebank.demo.plan`` draws
from, and nothing else."""

from __future__ import annotations

import tomllib
from pathlib import Path

from timebank.exchanges.schemas import ExchangeState
from timebank.participants.schemas import TimebankPolicy

_PEOPLE = tomllib.loads((Path(__file__).parent / "people.toml").read_text(encoding="utf-8"))

DEMO_NAME: str = _PEOPLE["name"]
FUNDER: str = _PEOPLE["funder"]
MEMBERS: list[str] = _PEOPLE["members"]
MEMBERS_WITH_LOGIN: tuple[str, ...] = tuple(_PEOPLE["members_with_login"])
PROFESSIONALS: list[str] = _PEOPLE["professionals"]
COORDINATOR = PROFESSIONALS[0]
ORGANISATIONS: list[str] = _PEOPLE["organisations"]
HELP: dict[str, list[str]] = _PEOPLE["help"]
AGENCY_HELP: dict[str, list[tuple[str, str, str]]] = {
    agency: [(category, gives, gets) for category, gives, gets in offers]
    for agency, offers in _PEOPLE["agency_help"].items()
}
DISPUTE_REASONS: list[str] = _PEOPLE["reasons"]["dispute"]
REJECT_REASONS: list[str] = _PEOPLE["reasons"]["reject"]
CANCEL_REASON: str = _PEOPLE["reasons"]["cancel"]
REVERSAL_REASONS: list[str] = _PEOPLE["reasons"]["reversal"]
DISPUTE_DECISIONS: dict[str, str] = _PEOPLE["reasons"]["dispute_decisions"]

WELCOME_GRANT_MINUTES = 120
HISTORY_DAYS = 240  # about eight months
EXCHANGES = 300
POLICY = TimebankPolicy(
    welcome_grant_minutes=WELCOME_GRANT_MINUTES,
    confirmation_required=True,
    approval_mode="coordinator",
)

MINUTES = [30, 45, 60, 90, 120, 180]
MINUTE_WEIGHTS = [10, 8, 30, 18, 14, 5]

# How many exchanges end up where (out of about EXCHANGES); the rest are approved.
AWAITING_APPROVAL = 20  # recent, confirmed, waiting for the coordinator
AWAITING_CONFIRMATION = 3  # recent, logged by a member, the other party has not confirmed yet
DISPUTED = 5  # the other party disputed; the coordinator has not decided yet
REJECTED = 3
CANCELLED = 3
REVERSED = 5

STATE_LABELS: dict[ExchangeState, str] = {
    "approved": "approved",
    "awaiting_approval": "awaiting approval",
    "logged": "awaiting confirmation",
    "disputed": "disputed",
    "rejected": "rejected",
    "cancelled": "cancelled",
    "reversed": "reversed",
}
