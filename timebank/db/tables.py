"""The tables the migrations in ``schema/`` create, as SQLAlchemy Core ``Table`` objects on one
``MetaData``: column names, types, nullability and primary keys, for building statements that
must be composed (``timebank.db.compose``). Constraints, defaults and triggers live in the
migrations, which stay the source of truth; tests/db/test_tables.py checks these definitions
against a migrated database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BIT, JSONB

metadata = MetaData()

TIMESTAMPTZ = DateTime(timezone=True)
# People as bitmaps: bit n of chunk c is the participant with ordinal c * 2048 + n.
BITMAP = BIT(2048)

account_limit_changes = Table(
    "account_limit_changes",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("changed_by_user_id", BigInteger),
    Column("changed_at", TIMESTAMPTZ, nullable=False),
    Column("floor_before", BigInteger, nullable=False),
    Column("ceiling_before", BigInteger, nullable=False),
    Column("floor_after", BigInteger, nullable=False),
    Column("ceiling_after", BigInteger, nullable=False),
    Column("reason", Text),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("participant_id", BigInteger),
    Column("system_role", Text),
    Column("balance", BigInteger, nullable=False),
    Column("pending_in", BigInteger, nullable=False),
    Column("pending_out", BigInteger, nullable=False),
    Column("floor", BigInteger),
    Column("ceiling", BigInteger),
    Column("version", BigInteger, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("flagged_by_reversal_id", BigInteger),
    Column("closed_at", TIMESTAMPTZ),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("expires_at", TIMESTAMPTZ, nullable=False),
    Column("last_used_at", TIMESTAMPTZ),
    Column("revoked_at", TIMESTAMPTZ),
)

categories = Table(
    "categories",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("slug", Text, nullable=False),
    Column("name", Text, nullable=False),
)

departures = Table(
    "departures",
    metadata,
    Column("account_id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("participant_id", BigInteger, nullable=False),
    Column("balance_to_participant_id", BigInteger),
    Column("balance_minutes", BigInteger, nullable=False),
    Column("transfer_id", BigInteger),
    Column("recorded_by_user_id", BigInteger),
    Column("left_at", TIMESTAMPTZ, nullable=False),
)

exchange_decisions = Table(
    "exchange_decisions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("exchange_id", BigInteger, nullable=False),
    Column("action", Text, nullable=False),
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    Column("actor_user_id", BigInteger),
    Column("actor_role", Text, nullable=False),
    Column("on_behalf_of", BigInteger),
    Column("reason", Text),
    Column("decided_at", TIMESTAMPTZ, nullable=False),
)

exchanges = Table(
    "exchanges",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("giver_id", BigInteger, nullable=False),
    Column("receiver_id", BigInteger, nullable=False),
    Column("minutes", BigInteger, nullable=False),
    Column("service_date", Date, nullable=False),
    Column("category_id", BigInteger, nullable=False),
    Column("description", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("logged_by_user_id", BigInteger),
    Column("logged_for", Text, nullable=False),
    Column("on_behalf", Boolean, nullable=False),
    Column("review_reason", Text),
    Column("pending_transfer_id", BigInteger),
    Column("transfer_id", BigInteger),
    Column("reversal_transfer_id", BigInteger),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("updated_at", TIMESTAMPTZ, nullable=False),
    Column("approved_at", TIMESTAMPTZ),
    Column("reversed_at", TIMESTAMPTZ),
    Column("group_id", BigInteger),
    Column("import_key", LargeBinary),
)

exchange_groups = Table(
    "exchange_groups",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("host_id", BigInteger, nullable=False),
    Column("host_side", Text, nullable=False),
    Column("legs", Integer, nullable=False),
    Column("minutes", BigInteger, nullable=False),
    Column("service_date", Date, nullable=False),
    Column("category_id", BigInteger, nullable=False),
    Column("description", Text),
    Column("logged_by_user_id", BigInteger),
    Column("on_behalf", Boolean, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
)

gifts = Table(
    "gifts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("from_participant_id", BigInteger),
    Column("to_participant_id", BigInteger),
    Column("minutes", BigInteger, nullable=False),
    Column("note", Text),
    Column("transfer_id", BigInteger, nullable=False),
    Column("created_by_user_id", BigInteger),
    Column("created_at", TIMESTAMPTZ, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("timebank_id", BigInteger, primary_key=True),
    Column("author", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", LargeBinary, nullable=False),
    Column("result", JSONB),
    Column("created_at", TIMESTAMPTZ, nullable=False),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("participant_id", BigInteger),
    Column("accepted_by", BigInteger),
    Column("token_hash", LargeBinary, nullable=False),
    Column("invited_by", BigInteger),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("expires_at", TIMESTAMPTZ, nullable=False),
    Column("accepted_at", TIMESTAMPTZ),
    Column("email", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False),
    Column("delivery", Text, nullable=False),
)

opening_balances = Table(
    "opening_balances",
    metadata,
    Column("account_id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("minutes", BigInteger, nullable=False),
    Column("transfer_id", BigInteger),
    Column("set_by_user_id", BigInteger),
    Column("set_at", TIMESTAMPTZ, nullable=False),
)

participants = Table(
    "participants",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("joined_on", Date, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("user_id", BigInteger),
    Column("ordinal", Integer, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("postal_address", Text),
    Column("contact_preference", Text, nullable=False),
    Column("external_id", Text),
    Column("deactivated_at", TIMESTAMPTZ),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("expires_at", TIMESTAMPTZ, nullable=False),
    Column("used_at", TIMESTAMPTZ),
)

pending_transfers = Table(
    "pending_transfers",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("debit_account_id", BigInteger, nullable=False),
    Column("credit_account_id", BigInteger, nullable=False),
    Column("minutes", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("memo", Text),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("resolved_at", TIMESTAMPTZ),
)

postings = Table(
    "postings",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("transfer_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("minutes", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("account_version", BigInteger, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
)

published_cells = Table(
    "published_cells",
    metadata,
    Column("timebank_id", BigInteger, primary_key=True),
    Column("figure", Text, primary_key=True),
    Column("period_kind", Text, primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("label", Text, primary_key=True),
    Column("withheld", Boolean, nullable=False),
    Column("first_published", Date, nullable=False),
    Column("first_withheld", Date),
    Column("shown_value", BigInteger),
)

report_day_people = Table(
    "report_day_people",
    metadata,
    Column("timebank_id", BigInteger, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("dimension", Text, primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("givers", BITMAP, nullable=False),
    Column("receivers", BITMAP, nullable=False),
)

report_days = Table(
    "report_days",
    metadata,
    Column("timebank_id", BigInteger, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("category_id", BigInteger, primary_key=True),
    Column("giver_kind", Text, primary_key=True),
    Column("receiver_kind", Text, primary_key=True),
    Column("minutes", BigInteger, nullable=False),
    Column("exchanges", BigInteger, nullable=False),
)

report_firsts = Table(
    "report_firsts",
    metadata,
    Column("timebank_id", BigInteger, nullable=False),
    Column("participant_id", BigInteger, primary_key=True),
    Column("first_day", Date, nullable=False),
)

report_month_people = Table(
    "report_month_people",
    metadata,
    Column("timebank_id", BigInteger, primary_key=True),
    Column("month", Date, primary_key=True),
    Column("dimension", Text, primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("givers", BITMAP, nullable=False),
    Column("receivers", BITMAP, nullable=False),
)

report_pair_months = Table(
    "report_pair_months",
    metadata,
    Column("timebank_id", BigInteger, primary_key=True),
    Column("low_id", BigInteger, primary_key=True),
    Column("high_id", BigInteger, primary_key=True),
    Column("month", Date, primary_key=True),
    Column("forth", Integer, nullable=False),
    Column("back", Integer, nullable=False),
)

report_queue = Table(
    "report_queue",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("exchange_id", BigInteger, nullable=False),
    Column("counting", Boolean, nullable=False),
)

report_tie_steps = Table(
    "report_tie_steps",
    metadata,
    Column("timebank_id", BigInteger, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("month", Date, primary_key=True),
    Column("previous", Date, primary_key=True),
    Column("shard", SmallInteger, primary_key=True),
    Column("pairs", Integer, nullable=False),
)

role_changes = Table(
    "role_changes",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("user_id", BigInteger),
    Column("participant_id", BigInteger),
    Column("changed_by", BigInteger),
    Column("invitation_id", BigInteger),
    Column("from_roles", ARRAY(Text), nullable=False),
    Column("to_roles", ARRAY(Text), nullable=False),
    Column("changed_at", TIMESTAMPTZ, nullable=False),
)

sign_in_counters = Table(
    "sign_in_counters",
    metadata,
    Column("key", LargeBinary, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failed_at", TIMESTAMPTZ),
    Column("last_succeeded_at", TIMESTAMPTZ),
    Column("expires_at", TIMESTAMPTZ, nullable=False),
)

sign_in_key = Table(
    "sign_in_key",
    metadata,
    Column("id", Boolean, primary_key=True),
    Column("key", LargeBinary, nullable=False),
)

timebank_roles = Table(
    "timebank_roles",
    metadata,
    Column("timebank_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("role", Text, primary_key=True),
    Column("granted_at", TIMESTAMPTZ, nullable=False),
)

timebanks = Table(
    "timebanks",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("slug", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("default_floor_minutes", BigInteger, nullable=False),
    Column("default_ceiling_minutes", BigInteger, nullable=False),
    Column("max_exchange_minutes", BigInteger, nullable=False),
    Column("welcome_grant_minutes", BigInteger, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("confirmation_required", Boolean, nullable=False),
    Column("approval_mode", Text, nullable=False),
    Column("review_above_minutes", BigInteger),
    Column("review_backdated_days", Integer),
    Column("review_organisation", Boolean, nullable=False),
    Column("review_first_exchange", Boolean, nullable=False),
    Column("participants_enrolled", Integer, nullable=False),
    Column("balance_display", Text, nullable=False),
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timebank_id", BigInteger, nullable=False),
    Column("debit_account_id", BigInteger, nullable=False),
    Column("credit_account_id", BigInteger, nullable=False),
    Column("minutes", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("pending_transfer_id", BigInteger),
    Column("reverses_transfer_id", BigInteger),
    Column("memo", Text),
    Column("created_at", TIMESTAMPTZ, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("email", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("password_hash", Text),
    Column("is_admin", Boolean, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
)
