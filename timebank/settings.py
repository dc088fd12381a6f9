"""The one settings object. Every value comes from a ``TIMEBANK_*`` environment variable."""

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator
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
    db_connection_max_uses: int = Field(
        default=500,
        ge=0,
        description="requests a pooled connection serves before it is replaced (0: no limit)",
    )
    db_connect_timeout: float = Field(
        default=3.0, gt=0, description="seconds to open a database connection before giving up"
    )
    db_pool_timeout: float = Field(
        default=5.0, gt=0, description="seconds a request waits for a pooled connection"
    )
    db_command_timeout: float = Field(
        default=30.0, gt=0, description="seconds one SQL statement may take before it is abandoned"
    )
    workers: int = Field(default=1, ge=1, description="worker processes `timebank serve` runs")
    graceful_shutdown_seconds: float = Field(
        default=30.0,
        ge=0,
        description="on SIGTERM, how long in-flight requests may take to finish",
    )
    log_level: str = Field(default="info", description="debug, info, warning or error")
    access_log: bool = Field(default=True, description="one JSON log line per request")
    metrics_allow: str = Field(
        default="127.0.0.1/32,::1/128",
        description="comma-separated client networks that may read /metrics (empty: nobody)",
    )
    ledger_max_retries: int = Field(
        default=8, ge=0, description="retries of a ledger transaction on deadlock/serialization"
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description="`timebank admin create` only: the new admin's password, instead of a prompt",
    )
    cookie_secure: bool = Field(
        default=True,
        description="the service is reached over HTTPS: session cookie over HTTPS only "
        "(browsers treat http://localhost as secure), HSTS on every answer",
    )
    session_days: int = Field(default=14, ge=1, description="days a sign-in session lasts")
    login_max_failures_per_account: int = Field(
        default=5,
        ge=1,
        description="failed sign-ins to one account from one client address before each "
        "further try waits a delay that doubles (4 times this from everywhere: a short delay)",
    )
    login_max_failures_per_client: int = Field(
        default=20,
        ge=1,
        description="failed sign-ins from one client address before each further try waits",
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For/-Proto are believed (empty: none; the client is the peer)",
    )
    api_token_days: int = Field(default=90, ge=1, description="days an API token lasts by default")
    api_token_max_days: int = Field(
        default=365, ge=1, description="the longest lifetime a caller may choose for an API token"
    )
    password_reset_hours: int = Field(
        default=24, ge=1, description="hours a password reset link stays valid"
    )
    invitation_days: int = Field(default=14, ge=1, description="days an invitation stays valid")
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="the address people reach the service at (e.g. https://timebank.example.org); "
        "invitation links are built from it rather than from the request's Host header",
    )
    report_min_cell: int = Field(
        default=5, ge=1, description="funder reports suppress any cell resting on fewer people"
    )
    report_settle_seconds: float = Field(
        default=5.0,
        ge=0,
        description="reports count up to this many seconds ago at the latest, so that a "
        "transaction still committing cannot change a report already given",
    )
    api_docs: bool = Field(
        default=True,
        description="serve the browsable API docs page at /schema (the OpenAPI document at "
        "/schema/openapi.json is served either way)",
    )
    report_publish_after_days: int = Field(
        default=7,
        ge=0,
        le=27,
        description="funder figures are published once a month, this many days after the month "
        "closes (time for late entries to be approved), and count as of that moment",
    )
    test_database_url: str | None = Field(
        default=None,
        description="tests only: a PostgreSQL server to test against instead of an embedded one",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("one of debug, info, warning, error, critical")
        return value.lower()

    @field_validator("metrics_allow", "trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in _parts(value):
            ip_network(part, strict=False)  # refuse a typo at start-up
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _parts(self.trusted_proxies)

    @property
    def metrics_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(part, strict=False) for part in _parts(self.metrics_allow)]


def _parts(value: str) -> list[str]:
    """The items of a comma-separated setting, blanks left out."""
    return [part.strip() for part in value.split(",") if part.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
