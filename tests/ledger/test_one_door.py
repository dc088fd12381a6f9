"""The ledger has one door: every SQL text that names a ``ledger_*`` database function is in
``timebank/ledger/``, so a change to the door changes exchanges, participants, tests and
benchmarks alike."""

import re
from pathlib import Path

import timebank

PACKAGE = Path(timebank.__file__).resolve().parent
_DATABASE_FUNCTIONS = re.compile(r"\bledger_[a-z_]+\s*\(")


def ledger_functions_named_outside_the_ledger(root: Path = PACKAGE) -> list[str]:
    """``file:line: function`` for every ``ledger_*(`` written outside ``timebank/ledger/``
    (Python names such as ``run_ledger_benchmark(`` are not database functions: the SQL
    names are those of ``schema/sql``)."""
    names = {
        match.group(1)
        for sql in (root.parent / "schema" / "sql").rglob("*.sql")
        for match in re.finditer(r"FUNCTION\s+(ledger_[a-z_]+)", sql.read_text())
    }
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("ledger/"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in _DATABASE_FUNCTIONS.finditer(line):
                name = match.group(0).rstrip("( ").strip()
                if name in names:
                    found.append(f"{relative}:{number}: {name}")
    return found


def test_only_the_ledger_names_its_database_functions():
    assert ledger_functions_named_outside_the_ledger() == []


def test_the_check_sees_a_ledger_function_named_in_exchanges(tmp_path):
    import shutil

    shutil.copytree(PACKAGE, tmp_path / "timebank")
    shutil.copytree(PACKAGE.parent / "schema", tmp_path / "schema")
    statements = tmp_path / "timebank" / "exchanges" / "repository.py"
    statements.write_text(
        statements.read_text() + '\n_X = "SELECT ledger_void_pending($1, $2, NULL, NULL, NULL)"\n'
    )
    assert ledger_functions_named_outside_the_ledger(tmp_path / "timebank") == [
        f"exchanges/repository.py:{len(statements.read_text().splitlines())}: ledger_void_pending"
    ]
