"""Exchanges over JSON."""

ROUTES: list = []
