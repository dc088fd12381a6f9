"""The one settings object. Every value comes from a ``TIMEBANK_*`` environment variable."""

from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("timebank", appauthor=False))


class Settings(BaseSettings):
    """Configuration of the service, read from the environment (prefix ``TIMEBANK_``)."""

    model_config = SettingsConfigDict(env_prefix="TIMEBANK_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://… of an external server; unset starts an embedded one",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="where the embedded PostgreSQL keeps its data",
    )
    host: str = Field(default="127.0.0.1", description="address `timebank serve` binds")
    port: int = Field(default=8000, description="port `timebank serve` listens on")
    db_pool_size: int = Field(default=10, ge=1, description="database connections per process")
    db_max_overflow: int = Field(default=10, ge=0, description="extra connections under load")
    ledger_max_retries: int = Field(
        default=8, ge=0, description="retries of a ledger transaction on deadlock/serialization"
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description="`timebank admin create` only: the new admin's password, instead of a prompt",
    )
    cookie_secure: bool = Field(
        default=True,
        description="send the session cookie over HTTPS only (browsers treat "
        "http://localhost as secure)",
    )
    session_days: int = Field(default=14, ge=1, description="days a sign-in session lasts")
    login_max_failures_per_account: int = Field(
        default=5, ge=1, description="failed sign-ins per account per 15 minutes before a pause"
    )
    login_max_failures_per_client: int = Field(
        default=20, ge=1, description="failed sign-ins per client address per 15 minutes"
    )
    invitation_days: int = Field(default=14, ge=1, description="days an invitation stays valid")
    report_min_cell: int = Field(
        default=5, ge=1, description="funder reports suppress any cell resting on fewer people"
    )
    report_settle_seconds: float = Field(
        default=5.0,
        ge=0,
        description="reports count up to this many seconds ago at the latest, so that a "
        "transaction still committing cannot change a report already given",
    )
    test_database_url: str | None = Field(
        default=None,
        description="tests only: a PostgreSQL server to test against instead of an embedded one",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
