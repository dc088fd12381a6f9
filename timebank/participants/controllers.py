"""Timebanks, participants, invitations, roles and categories over JSON."""

ROUTES: list = []
