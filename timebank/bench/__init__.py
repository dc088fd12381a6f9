"""Benchmarks: programs that measure the service against a baseline taken in the same run, on a
fresh embedded PostgreSQL, and print the figures (``timebank bench ...``)."""
