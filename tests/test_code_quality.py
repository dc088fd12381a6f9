"""The checks a reviewer would run: ruff lint and format, mypy on the package, hadolint on the
Dockerfile. Each test runs the tool exactly as a developer would and shows its complaints."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    executable = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    if executable is None:
        pytest.fail(
            f"{tool} is not installed; it comes with the test extra: pip install -e '.[test]'"
        )
    return subprocess.run(
        [str(executable), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_ruff_finds_nothing():
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_ruff_formatted():
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing_in_the_package():
    result = run("mypy", "timebank")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_passes_the_dockerfile():
    result = run("hadolint", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


# The import direction (README, "Layout"): each module imports only from its own package, from
# a layer below its own, or from the base. Top to bottom:
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry points", ("timebank.app", "timebank.cli", "timebank.demo", "timebank.bench")),
    (
        "http",
        (
            "timebank.web",
            "timebank.deps",
            "timebank.edges",
            "timebank.ops",
            "timebank.*.controllers",
            "timebank.auth.deps",
            "timebank.auth.csrf",
        ),
    ),
    # A whole timebank at once: reads and restores every domain's rows.
    ("whole timebank", ("timebank.archive",)),
    # Moving a timebank in: reads and writes across the domains, in one transaction.
    ("imports", ("timebank.imports",)),
    ("domains", ("timebank.exchanges", "timebank.participants", "timebank.reports")),
    ("ledger", ("timebank.ledger",)),
    ("accounts and access", ("timebank.auth",)),
    ("database", ("timebank.db",)),
]
DOMAINS = [name for name, _ in LAYERS].index("domains")
# Importable from anywhere: typed errors, settings, field types and problem documents,
# parsing, and a timebank's policy (read by exchanges, set by participants).
BASE = (
    "timebank",
    "timebank.errors",
    "timebank.settings",
    "timebank.fields",
    "timebank.policy",
    "timebank.hours",
    "timebank.names",
    "timebank.openapi",
)


def _matches(module: str, pattern: str) -> bool:
    if "*" in pattern:
        head, tail = pattern.split(".*.")
        parts = module.split(".")
        return module.startswith(head + ".") and len(parts) >= 3 and parts[2] == tail
    return module == pattern or module.startswith(pattern + ".")


def _place(module: str) -> tuple[int, str] | None:
    """The layer of a module (its index, top first) and its package within the layer."""
    if module in BASE:
        return None
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if _matches(module, pattern):
                return index, ".".join(module.split(".")[:2])
    raise AssertionError(f"{module} is in no layer: add it to LAYERS or BASE")


def _imports(path: Path, module: str, root: Path) -> list[tuple[str, int]]:
    import ast

    found = []
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            for name in names:  # `from timebank.x import module` names the module
                found.append((name if _is_module(name, root) else target, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
    return [(name, line) for name, line in found if name.split(".")[0] == "timebank"]


def _is_module(name: str, root: Path = ROOT) -> bool:
    relative = Path(*name.split("."))
    return (root / f"{relative}.py").exists() or (root / relative / "__init__.py").exists()


def layering_violations(root: Path = ROOT) -> list[str]:
    wrong = []
    for path in sorted((root / "timebank").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        here = _place(module)
        if here is None:
            continue
        for target, line in _imports(path, module, root):
            there = _place(target)
            if there is None or there[1] == here[1]:
                continue
            # A package's controllers are its HTTP door: they reach no other domain.
            other_domain = (
                _matches(module, "timebank.*.controllers")
                and there[0] == DOMAINS
                and there[1] != ".".join(module.split(".")[:2])
            )
            if there[0] < here[0] or (there[0] == here[0] and here[0] > 1) or other_domain:
                wrong.append(
                    f"{path.relative_to(root)}:{line}: {module} ({LAYERS[here[0]][0]}) imports "
                    f"{target} ({LAYERS[there[0]][0]})"
                )
    return wrong


# Known breaches, each to be mended: none left.
KNOWN_BREACHES: set[str] = set()


def test_imports_run_one_way_down_the_layers():
    """web → domains (exchanges, participants, reports) → ledger → auth → db, each package
    keeping to itself within its layer; HTTP controllers belong to the http layer."""
    wrong = [v for v in layering_violations() if v.split(": ", 1)[1] not in KNOWN_BREACHES]
    assert not wrong, "\n".join(wrong)


def test_pages_call_services_not_the_apis_controllers():
    """The pages and the JSON API are two doors to the same services: neither goes through
    the other's handlers."""
    wrong = []
    for path in sorted((ROOT / "timebank" / "web").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        wrong += [
            f"{path.relative_to(ROOT)}:{line}: {target}"
            for target, line in _imports(path, module, ROOT)
            if _matches(target, "timebank.*.controllers")
        ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", ["schemas", "controllers"])
def test_the_layering_check_sees_the_ledger_importing_a_domain(tmp_path, module):
    shutil.copytree(ROOT / "timebank", tmp_path / "timebank")
    path = tmp_path / "timebank" / "ledger" / f"{module}.py"
    path.write_text(path.read_text() + "\nfrom timebank.exchanges import policy\n")
    assert any(
        f"timebank.ledger.{module} (" in v and "imports timebank.exchanges.policy (domains)" in v
        for v in layering_violations(tmp_path)
    )
