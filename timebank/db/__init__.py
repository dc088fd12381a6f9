"""Database access: engine and sessions, the embedded PostgreSQL, table models."""
