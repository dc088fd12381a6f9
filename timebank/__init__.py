"""Timebank: a reciprocity ledger service for timebanks and co-produced public services."""

__version__ = "0.1.0"
