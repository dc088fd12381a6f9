"""`timebank import` at the command line: a summary when it imports, every bad row on
standard error and a failing exit status when it does not."""

from __future__ import annotations

from tests.imports.files import HISTORY_HEADER, PEOPLE_HEADER, counts, csv_bytes, run_command
from tests.ops.server import TIMEBANK, environment


async def test_the_command_imports_and_refuses(database_url, raw, timebank, tmp_path):
    env = environment(database_url)
    people = tmp_path / "people.csv"
    people.write_bytes(
        csv_bytes(
            PEOPLE_HEADER,
            [("Ada", "", "", "", "", "", "1:00", "A1"), ("Bea", "", "", "", "", "", "", "A2")],
        )
    )
    command = [*TIMEBANK, "import", "people", str(people), "--timebank", timebank.slug]
    status, out, err = await run_command([*command, "--dry-run"], env)
    assert status == 0 and out.startswith("dry run, nothing written"), err
    status, out, err = await run_command(command, env)
    assert status == 0 and "2 imported" in out and "1 opening balances" in out, err

    history = tmp_path / "history.csv"
    history.write_bytes(
        csv_bytes(
            HISTORY_HEADER,
            [("2020-01-01", "A1", "A2", "60", "", ""), ("2020-01-02", "Zed", "A2", "60", "", "")],
        )
    )
    before = await counts(raw, timebank.id)
    command = [*TIMEBANK, "import", "history", str(history), "--timebank", timebank.slug]
    status, out, err = await run_command(command, env)
    assert status == 1
    assert "line 3, column giver: unknown person" in err and "nothing was imported" in err
    assert await counts(raw, timebank.id) == before
    status, out, err = await run_command([*command, "--good-rows-only"], env)
    assert status == 0 and "1 imported" in out and "skipped line 3" in err
    status, out, err = await run_command(
        [*TIMEBANK, "import", "history", str(history), "--timebank", "nowhere"], env
    )
    assert status == 1 and "not found" in err
