"""Exchanges against the ledger: every exchange's links say what the ledger holds for it.

The schema's triggers keep these true as exchanges are logged and decided; this check reads
them back from the rows, for ``timebank verify`` and for a restore (which copies rows with the
triggers off). An exchange's reservation holds its minutes from the receiver's account to the
giver's, and is posted exactly when the exchange was approved, voided when it was rejected or
cancelled; its transfer moves those minutes between those accounts and is its reservation
posted (where it had one); its reversal moves them back."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.statements import fetch
from timebank.ledger.audit import Finding, audited_timebanks

# The first 20 findings of each timebank: a restore or an operator needs the first few, not all.
_MISMATCHED = """
SELECT id, problem FROM (
SELECT e.id, CASE
    WHEN p.id IS NOT NULL AND (p.minutes <> e.minutes OR p.debit_account_id <> ra.id
                               OR p.credit_account_id <> ga.id OR p.kind <> 'exchange')
        THEN 'its reservation does not hold its minutes from the receiver to the giver'
    WHEN p.id IS NOT NULL AND p.state <> CASE
            WHEN e.state IN ('approved', 'reversed') THEN 'posted'
            WHEN e.state IN ('rejected', 'cancelled') THEN 'voided'
            ELSE 'pending' END
        THEN 'its reservation is ' || p.state || ' while the exchange is ' || e.state
    WHEN t.id IS NOT NULL AND (t.minutes <> e.minutes OR t.debit_account_id <> ra.id
                               OR t.credit_account_id <> ga.id OR t.kind <> 'exchange')
        THEN 'its transfer does not move its minutes from the receiver to the giver'
    WHEN t.id IS NOT NULL AND t.pending_transfer_id IS DISTINCT FROM e.pending_transfer_id
        THEN 'its transfer is not its reservation posted'
    WHEN r.id IS NOT NULL AND (r.kind <> 'reversal' OR r.reverses_transfer_id <> t.id)
        THEN 'its reversal does not reverse its transfer'
    END AS problem
  FROM exchanges e
  JOIN accounts ga ON ga.participant_id = e.giver_id
  JOIN accounts ra ON ra.participant_id = e.receiver_id
  LEFT JOIN pending_transfers p ON p.id = e.pending_transfer_id
  LEFT JOIN transfers t ON t.id = e.transfer_id
  LEFT JOIN transfers r ON r.id = e.reversal_transfer_id
 WHERE e.timebank_id = $1
) checked
WHERE problem IS NOT NULL ORDER BY id LIMIT 20
"""


async def exchange_findings(conn: AsyncConnection, timebank_slug: str | None) -> list[Finding]:
    """The exchanges (of one timebank, or of all) whose links disagree with the ledger: the
    first few of each timebank, each naming the exchange and what is wrong."""
    findings = []
    for timebank_id, slug in (await audited_timebanks(conn, timebank_slug)).items():
        for row in await fetch(conn, _MISMATCHED, timebank_id):
            findings.append(Finding("exchanges", slug, f"exchange {row['id']}", row["problem"]))
    return findings
