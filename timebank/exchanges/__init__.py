"""Exchanges of time: logging, confirmation, approval, reversal, and the timebank's policy."""
