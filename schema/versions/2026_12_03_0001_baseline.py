"""Baseline: every table, function and trigger, from schema/sql/ (the schema that the fifteen
revisions up to 0015_published_cells built, which it replaces).

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_function, run_sql_file

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

# In this order: each file's foreign keys name tables of the files before it.
TABLES = ("auth", "people", "ledger", "exchanges", "reports")

# After the tables (trigger files create their triggers on them, and function signatures name
# their row types). PL/pgSQL resolves the functions it calls when called, so the order of
# these does not matter.
FUNCTIONS = (
    # The ledger: posting, reserving, reversing, idempotency keys, limits.
    "ledger_answer_key",
    "ledger_answered_key",
    "ledger_apply_transfer",
    "ledger_check_account",
    "ledger_check_exchange_maximum",
    "ledger_check_pending",
    "ledger_claim_key",
    "ledger_hold",
    "ledger_post_batch",
    "ledger_post_pending",
    "ledger_post_transfer",
    "ledger_refuse_change",
    "ledger_reserve",
    "ledger_resolve_pending",
    "ledger_reverse",
    "ledger_set_limits",
    "ledger_void_pending",
    # The ledger's triggers on its tables (invariants I1-I8).
    "account_limit_changes_append_only",
    "accounts_check_at_commit",
    "accounts_check_flag",
    "accounts_check_limit_change",
    "accounts_flagged_not_further_out",
    "accounts_refuse_delete",
    "accounts_start_empty",
    "idempotency_keys_check",
    "idempotency_keys_check_answered",
    "pending_transfers_check",
    "pending_transfers_check_holds",
    "pending_transfers_check_posted",
    "postings_check_leg",
    "transfers_check_balanced",
    "transfers_check_links",
    # People and exchanges.
    "participants_number",
    "role_changes_refuse_change",
    "exchanges_keep_reports",
    "exchanges_keep_reports_logged",
    "exchanges_stamp_counting",
    # Reports.
    "published_cells_withheld_for_good",
    "report_apply",
    "report_apply_queued",
    "report_first_day",
    "report_mark",
    "report_mark_pair",
    "report_mark_row",
    "report_step_pair",
    "report_still_counts_between",
)


def upgrade() -> None:
    for area in TABLES:
        run_sql_file(f"tables/{area}.sql")
    for name in FUNCTIONS:
        run_function(name)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only; restore from a backup instead")
