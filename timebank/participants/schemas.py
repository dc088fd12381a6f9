"""What the participants service takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

ParticipantKind = Literal["member", "professional", "organisation"]

DEFAULT_CATEGORIES: dict[str, str] = {
    "befriending": "Befriending and company",
    "gardening": "Gardening",
    "lifts": "Lifts and transport",
    "cooking": "Cooking and meals",
    "tutoring": "Tutoring and skills",
    "household": "Household help and DIY",
    "admin": "Letters, forms and admin",
    "wellbeing": "Health and wellbeing",
    "events": "Community events",
    "other": "Other",
}


@dataclass(frozen=True)
class TimebankPolicy:
    default_floor_minutes: int = -600
    default_ceiling_minutes: int = 6000
    max_exchange_minutes: int = 720
    welcome_grant_minutes: int = 0


@dataclass(frozen=True)
class TimebankRecord:
    id: int
    slug: str
    name: str
    community_fund_account_id: int
    policy: TimebankPolicy


@dataclass(frozen=True)
class ParticipantRecord:
    id: int
    timebank_id: int
    kind: str
    display_name: str
    joined_on: date
    account_id: int
