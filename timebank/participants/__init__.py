"""Timebanks, their participants (members, professionals, organisations) and categories."""
