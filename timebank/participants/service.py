"""The participants service: timebanks, their policy and categories (``timebanks``),
participants and invitations to join (``enrolment``), roles and staff (``staff``), their
details and deactivation (``details``). Who may do
what (DESIGN.md §4) is decided here, for every caller; each read and write is one short
transaction."""

from __future__ import annotations

from timebank.participants.details import Details
from timebank.participants.enrolment import MAX_PAGE

__all__ = ["MAX_PAGE", "Participants"]


class Participants(Details):
    """Create and run timebanks: policy, participants with their accounts and welcome hours,
    their details, users, roles and invitations, categories."""
