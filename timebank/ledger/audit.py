"""The ledger audit behind ``timebank verify``: re-derive every figure from the postings and
report everything that does not add up, naming the timebank and the account or transfer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.statements import execute, fetch, fetch_one
from timebank.errors import NotFound


@dataclass(frozen=True)
class Finding:
    check: str
    timebank: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] timebank {self.timebank}, {self.subject}: {self.detail}"


@dataclass
class AuditReport:
    timebanks: int = 0
    accounts: int = 0
    transfers: int = 0
    postings: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


# Each check is one query returning a row (timebank_id, subject, detail) for every problem
# found; $1 scopes it to one timebank (NULL means every timebank).
_CHECKS: dict[str, str] = {
    "balance-matches-postings": """
        SELECT a.timebank_id, 'account ' || a.id AS subject,
               format('balance %s at version %s, but its postings sum to %s over %s postings',
                      a.balance, a.version, coalesce(p.total, 0), coalesce(p.n, 0)) AS detail
          FROM accounts a
          LEFT JOIN (SELECT account_id, sum(minutes) AS total, count(*) AS n
                       FROM postings GROUP BY account_id) p ON p.account_id = a.id
         WHERE (CAST($1 AS bigint) IS NULL OR a.timebank_id = $1)
           AND (a.balance <> coalesce(p.total, 0) OR a.version <> coalesce(p.n, 0))
    """,
    "version-chain": """
        SELECT c.timebank_id, 'account ' || c.account_id AS subject,
               format('posting %s (version %s) has balance_after %s; expected version %s and balance %s',
                      c.id, c.account_version, c.balance_after,
                      coalesce(c.previous_version, 0) + 1, coalesce(c.previous_balance, 0) + c.minutes)
                   AS detail
          FROM (SELECT p.*, lag(p.account_version) OVER w AS previous_version,
                       lag(p.balance_after) OVER w AS previous_balance
                  FROM postings p
                 WHERE CAST($1 AS bigint) IS NULL OR p.timebank_id = $1
                WINDOW w AS (PARTITION BY p.account_id ORDER BY p.account_version)) c
         WHERE c.account_version <> coalesce(c.previous_version, 0) + 1
            OR c.balance_after <> coalesce(c.previous_balance, 0) + c.minutes
    """,
    "transfer-zero-sum": """
        SELECT x.timebank_id, 'transfer ' || x.id AS subject,
               format('%s minutes from account %s to %s, but its postings are %s',
                      x.minutes, x.debit_account_id, x.credit_account_id,
                      coalesce(legs.shown, 'missing')) AS detail
          FROM transfers x
          LEFT JOIN (SELECT p.transfer_id,
                            string_agg(format('%s on account %s', p.minutes, p.account_id), ', '
                                       ORDER BY p.account_id) AS shown,
                            count(*) AS n, sum(p.minutes) AS total,
                            bool_and(p.account_id IN (x2.debit_account_id, x2.credit_account_id)
                                     AND p.minutes = CASE WHEN p.account_id = x2.debit_account_id
                                                          THEN -x2.minutes ELSE x2.minutes END) AS fits
                       FROM postings p JOIN transfers x2 ON x2.id = p.transfer_id
                      GROUP BY p.transfer_id) legs ON legs.transfer_id = x.id
         WHERE (CAST($1 AS bigint) IS NULL OR x.timebank_id = $1)
           AND (legs.n IS DISTINCT FROM 2 OR legs.total <> 0 OR NOT legs.fits)
    """,
    "timebank-zero-sum": """
        SELECT a.timebank_id, 'the whole timebank' AS subject,
               format('account balances sum to %s minutes instead of 0', sum(a.balance)) AS detail
          FROM accounts a
         WHERE CAST($1 AS bigint) IS NULL OR a.timebank_id = $1
         GROUP BY a.timebank_id
        HAVING sum(a.balance) <> 0
    """,
    "limits": """
        SELECT a.timebank_id, 'account ' || a.id AS subject,
               format('balance %s, pending in %s, pending out %s is %s floor %s / ceiling %s%s',
                      a.balance, a.pending_in, a.pending_out,
                      CASE WHEN o.outside THEN 'outside' ELSE 'within' END, a.floor, a.ceiling,
                      CASE WHEN a.flagged_by_reversal_id IS NULL THEN ''
                           ELSE ', flagged by reversal ' || a.flagged_by_reversal_id END) AS detail
          FROM accounts a
         CROSS JOIN LATERAL (SELECT coalesce(a.balance - a.pending_out < a.floor
                                             OR a.balance + a.pending_in > a.ceiling, false)
                                    AS outside) o
         WHERE (CAST($1 AS bigint) IS NULL OR a.timebank_id = $1)
           -- Outside its limits exactly when a reversal flagged it (I5).
           AND (o.outside <> (a.flagged_by_reversal_id IS NOT NULL)
                OR a.pending_in < 0 OR a.pending_out < 0)
    """,
    "pending-matches-reservations": """
        SELECT a.timebank_id, 'account ' || a.id AS subject,
               format('pending in %s / out %s, but open reservations hold in %s / out %s',
                      a.pending_in, a.pending_out, coalesce(r_in.total, 0), coalesce(r_out.total, 0))
                   AS detail
          FROM accounts a
          LEFT JOIN (SELECT credit_account_id AS account_id, sum(minutes) AS total
                       FROM pending_transfers WHERE state = 'pending' GROUP BY 1) r_in
                 ON r_in.account_id = a.id
          LEFT JOIN (SELECT debit_account_id AS account_id, sum(minutes) AS total
                       FROM pending_transfers WHERE state = 'pending' GROUP BY 1) r_out
                 ON r_out.account_id = a.id
         WHERE (CAST($1 AS bigint) IS NULL OR a.timebank_id = $1)
           AND (a.pending_in <> coalesce(r_in.total, 0) OR a.pending_out <> coalesce(r_out.total, 0))
    """,
    "reservations-posted-once": """
        SELECT p.timebank_id, 'reservation ' || p.id AS subject,
               format('state %s with %s transfers posting it', p.state, count(x.id)) AS detail
          FROM pending_transfers p
          LEFT JOIN transfers x ON x.pending_transfer_id = p.id
         WHERE CAST($1 AS bigint) IS NULL OR p.timebank_id = $1
         GROUP BY p.timebank_id, p.id, p.state
        HAVING count(x.id) <> CASE WHEN p.state = 'posted' THEN 1 ELSE 0 END
    """,
    "reversals-mirror": """
        SELECT r.timebank_id, 'transfer ' || r.id AS subject,
               format('reverses transfer %s but does not move the same %s minutes back',
                      o.id, o.minutes) AS detail
          FROM transfers r
          JOIN transfers o ON o.id = r.reverses_transfer_id
         WHERE (CAST($1 AS bigint) IS NULL OR r.timebank_id = $1)
           AND (r.debit_account_id <> o.credit_account_id OR r.credit_account_id <> o.debit_account_id
                OR r.minutes <> o.minutes OR o.kind = 'reversal')
    """,
    # Each gift, grant, opening balance and departure names the transfer that moved its
    # minutes, between the accounts it names (None: the community pot).
    "records-match-transfers": """
        WITH pots AS (SELECT timebank_id, id FROM accounts WHERE system_role = 'community_fund'),
        expected AS (
            SELECT g.timebank_id, 'gift ' || g.id AS subject, g.transfer_id, g.kind, g.minutes,
                   coalesce(fa.id, p.id) AS debit, coalesce(ta.id, p.id) AS credit
              FROM gifts g JOIN pots p USING (timebank_id)
              LEFT JOIN accounts fa ON fa.participant_id = g.from_participant_id
              LEFT JOIN accounts ta ON ta.participant_id = g.to_participant_id
            UNION ALL
            SELECT o.timebank_id, 'opening balance of account ' || o.account_id, o.transfer_id,
                   'opening', abs(o.minutes),
                   CASE WHEN o.minutes > 0 THEN p.id ELSE o.account_id END,
                   CASE WHEN o.minutes > 0 THEN o.account_id ELSE p.id END
              FROM opening_balances o JOIN pots p USING (timebank_id)
             WHERE o.transfer_id IS NOT NULL
            UNION ALL
            SELECT d.timebank_id, 'departure of account ' || d.account_id, d.transfer_id,
                   'leaving', abs(d.balance_minutes),
                   CASE WHEN d.balance_minutes > 0 THEN d.account_id ELSE p.id END,
                   CASE WHEN d.balance_minutes > 0 THEN coalesce(ta.id, p.id) ELSE d.account_id END
              FROM departures d JOIN pots p USING (timebank_id)
              LEFT JOIN accounts ta ON ta.participant_id = d.balance_to_participant_id
             WHERE d.transfer_id IS NOT NULL)
        SELECT e.timebank_id, e.subject,
               format('should be a %s transfer of %s minutes from account %s to %s, but transfer %s is %s',
                      e.kind, e.minutes, e.debit, e.credit, e.transfer_id,
                      coalesce(format('a %s transfer of %s minutes from account %s to %s',
                                      x.kind, x.minutes, x.debit_account_id, x.credit_account_id),
                               'missing')) AS detail
          FROM expected e
          LEFT JOIN transfers x ON x.id = e.transfer_id
         WHERE (CAST($1 AS bigint) IS NULL OR e.timebank_id = $1)
           AND (x.id IS NULL OR (x.kind, x.minutes, x.debit_account_id, x.credit_account_id)
                IS DISTINCT FROM (e.kind, e.minutes, e.debit, e.credit))
    """,
    # A gift, opening or leaving transfer has its record; an account is closed exactly when its
    # participant's departure is recorded.
    "records-of-kinds": """
        SELECT x.timebank_id, 'transfer ' || x.id AS subject,
               format('a %s transfer with no record of who and why', x.kind) AS detail
          FROM transfers x
         WHERE (CAST($1 AS bigint) IS NULL OR x.timebank_id = $1)
           AND x.kind IN ('gift', 'opening', 'leaving')
           AND NOT EXISTS (SELECT FROM gifts g WHERE g.transfer_id = x.id)
           AND NOT EXISTS (SELECT FROM opening_balances o WHERE o.transfer_id = x.id)
           AND NOT EXISTS (SELECT FROM departures d WHERE d.transfer_id = x.id)
        UNION ALL
        SELECT a.timebank_id, 'account ' || a.id,
               CASE WHEN a.closed_at IS NULL THEN 'its participant left, but it is open'
                    ELSE 'closed, but no departure is recorded' END
          FROM accounts a
          LEFT JOIN departures d ON d.account_id = a.id
         WHERE (CAST($1 AS bigint) IS NULL OR a.timebank_id = $1)
           AND (a.closed_at IS NULL) <> (d.account_id IS NULL)
    """,
    # A group session's legs agree with it: as many as it says, their minutes summing to its
    # minutes, each with its host on the host's side on its date and category, and decided
    # together (all approved, all reversed, or all released: rejected, or cancelled where
    # nobody had confirmed them; none settled while another is still open).
    "group-sessions": """
        SELECT g.timebank_id, 'group session ' || g.id AS subject,
               format('says %s legs of %s minutes with participant %s as %s; has %s legs of %s'
                      ' minutes, %s not with its host on that side, date and category,'
                      ' in states %s',
                      g.legs, g.minutes, g.host_id, g.host_side, l.n, l.total, l.strays,
                      coalesce(l.states, 'none')) AS detail
          FROM exchange_groups g
         CROSS JOIN LATERAL (
               SELECT count(*) AS n, coalesce(sum(e.minutes), 0) AS total,
                      count(*) FILTER (WHERE CASE g.host_side WHEN 'giver' THEN e.giver_id
                                                              ELSE e.receiver_id END <> g.host_id
                                          OR e.service_date <> g.service_date
                                          OR e.category_id <> g.category_id) AS strays,
                      count(DISTINCT CASE WHEN e.state IN ('rejected', 'cancelled')
                                          THEN 'released' ELSE e.state END)
                          FILTER (WHERE e.state IN
                              ('approved', 'rejected', 'cancelled', 'reversed')) AS decided,
                      count(*) FILTER (WHERE e.state NOT IN
                          ('approved', 'rejected', 'cancelled', 'reversed')) AS undecided,
                      string_agg(DISTINCT e.state, ', ') AS states
                 FROM exchanges e WHERE e.group_id = g.id) l
         WHERE (CAST($1 AS bigint) IS NULL OR g.timebank_id = $1)
           AND (l.n <> g.legs OR l.total <> g.minutes OR l.strays > 0
                OR l.decided > 1 OR (l.decided = 1 AND l.undecided > 0))
    """,
}

# The timebanks an audit covers: the one of slug $1, or every one (NULL).
_TIMEBANKS = (
    "SELECT id, slug FROM timebanks WHERE CAST($1 AS text) IS NULL OR slug = $1 ORDER BY id"
)

_COUNTS = """
    SELECT (SELECT count(*) FROM accounts
             WHERE CAST($1 AS bigint) IS NULL OR timebank_id = $1) AS accounts,
           (SELECT count(*) FROM transfers
             WHERE CAST($1 AS bigint) IS NULL OR timebank_id = $1) AS transfers,
           (SELECT count(*) FROM postings
             WHERE CAST($1 AS bigint) IS NULL OR timebank_id = $1) AS postings
"""


async def audited_timebanks(conn: AsyncConnection, timebank_slug: str | None) -> dict[int, str]:
    """The timebanks an audit covers, id → slug: the one named (NotFound if no timebank has
    that slug), or every one."""
    found = {row["id"]: row["slug"] for row in await fetch(conn, _TIMEBANKS, timebank_slug)}
    if timebank_slug is not None and not found:
        raise NotFound(f"timebank {timebank_slug!r} not found")
    return found


async def audit(conn: AsyncConnection, timebank_slug: str | None = None) -> AuditReport:
    """Check every invariant over the stored rows (of one timebank, or of all of them), in one
    snapshot that a caller may go on reading (``timebank verify`` adds the report checks)."""
    # One snapshot for every check, so a busy ledger cannot look inconsistent between queries.
    await execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    return await audit_as_seen(conn, timebank_slug)


async def audit_as_seen(conn: AsyncConnection, timebank_slug: str | None = None) -> AuditReport:
    """``audit`` in the caller's transaction as it stands, its own writes included (a restore
    checks the rows it copied before it commits)."""
    slugs = await audited_timebanks(conn, timebank_slug)
    timebank_id = next(iter(slugs)) if timebank_slug is not None else None
    counts = await fetch_one(conn, _COUNTS, timebank_id)
    assert counts is not None, "a SELECT without FROM returns one row"
    report = AuditReport(timebanks=len(slugs), **counts)
    for check, sql in _CHECKS.items():
        for row in await fetch(conn, sql, timebank_id):
            slug = slugs[row["timebank_id"]]
            report.findings.append(Finding(check, slug, row["subject"], row["detail"]))
    return report
