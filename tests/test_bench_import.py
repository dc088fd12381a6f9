"""The import benchmark runs end to end on small files: it prints COPY's floor and the import
beside it, and every check of what the import left says OK (no timing is asserted)."""

import subprocess
import sys


def test_bench_import_prints_the_import_beside_copy_and_every_check_holds():
    result = subprocess.run(
        [
            *(sys.executable, "-m", "timebank.cli", "bench", "import"),
            *("--people", "120", "--exchanges", "3000", "--years", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line in (
        "120 people, 3,000 exchanges over 2 years",
        "COPY people into a plain table (floor)",
        "COPY history into a plain table (floor)",
        "import people",
        "import history",
        "history again (nothing new to import)",
        "check: people imported: OK",
        "check: exchanges imported, approved: OK",
        "check: every balance = opening + history: OK",
        "check: a second import finds everything there: OK",
        "check: ledger and report aggregates verified: OK",
        "ledger verified clean",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert "FAILED" not in out, out
