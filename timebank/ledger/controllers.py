"""Balances, statements and the ledger audit over JSON."""

ROUTES: list = []
