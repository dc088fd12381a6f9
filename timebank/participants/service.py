"""The participants service: timebanks, their policy and categories (``timebanks``),
participants and invitations to join (``enrolment``), roles and staff (``staff``). Who may do
what (DESIGN.md §4) is decided here, for every caller; each read and write is one short
transaction."""

from __future__ import annotations

from timebank.participants.enrolment import MAX_PAGE
from timebank.participants.staff import Staff

__all__ = ["MAX_PAGE", "Participants"]


class Participants(Staff):
    """Create and run timebanks: policy, participants with their accounts and welcome hours,
    users, roles and invitations, categories."""
