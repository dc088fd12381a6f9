"""The demo loader as a newcomer meets it: a lively timebank of all three kinds of participant,
hundreds of exchanges, some waiting for approval, a ledger that audits clean, loaded once."""

from sqlalchemy import text

from tests.conftest import unique_slug
from timebank.db.engine import create_engine
from timebank.demo import load_demo
from timebank.ledger.audit import audit
from timebank.settings import Settings

_FIGURES = text(
    """
    SELECT (SELECT count(*) FROM participants WHERE timebank_id = t.id) AS participants,
           (SELECT count(DISTINCT kind) FROM participants WHERE timebank_id = t.id) AS kinds,
           (SELECT count(*) FROM participants
             WHERE timebank_id = t.id AND kind = 'member') AS members,
           (SELECT count(*) FROM transfers
             WHERE timebank_id = t.id AND kind = 'exchange') AS exchanges,
           (SELECT count(*) FROM transfers
             WHERE timebank_id = t.id AND kind = 'grant') AS grants,
           (SELECT count(*) FROM transfers
             WHERE timebank_id = t.id AND kind = 'reversal') AS reversals,
           (SELECT count(*) FROM pending_transfers
             WHERE timebank_id = t.id AND state = 'pending') AS pending,
           (SELECT count(*) FROM pending_transfers
             WHERE timebank_id = t.id AND state = 'voided') AS voided,
           (SELECT count(*) FROM postings WHERE timebank_id = t.id) AS postings
      FROM timebanks t WHERE t.slug = :slug
    """
)


async def test_demo_loads_a_lively_timebank_that_audits_clean_once(database_url):
    settings = Settings()
    slug = unique_slug("demo")

    summary = await load_demo(database_url, settings, slug=slug, seed=2026)

    assert slug in summary and "Riverside Timebank" in summary
    assert "timebank verify" in summary
    engine = create_engine(database_url, settings)
    try:
        async with engine.connect() as conn:
            figures = (await conn.execute(_FIGURES, {"slug": slug})).one()
        assert figures.kinds == 3  # members, professionals and organisations
        assert figures.members >= 25
        assert figures.grants == figures.participants  # everyone got welcome hours
        assert figures.exchanges >= 200  # a few hundred posted exchanges
        assert figures.pending > 0  # some wait for a coordinator's approval
        assert figures.voided > 0
        assert figures.reversals > 0
        async with engine.connect() as conn:
            report = await audit(conn, slug)
        assert report.ok, [str(finding) for finding in report.findings]
        assert report.transfers == figures.exchanges + figures.grants + figures.reversals

        again = await load_demo(database_url, settings, slug=slug, seed=2026)

        assert "already there" in again
        async with engine.connect() as conn:
            assert (await conn.execute(_FIGURES, {"slug": slug})).one() == figures
    finally:
        await engine.dispose()
