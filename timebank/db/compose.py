"""Building composed statements on the tables of ``timebank.db.tables`` with SQLAlchemy Core,
and compiling them once, at import, to the plain SQL asyncpg runs: parameters ``$1``, ``$2``…,
either numbered by hand (``arg(n)``) or named and numbered in order (``bindparam("name")``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import bindparam, cast, or_
from sqlalchemy.dialects.postgresql.base import PGCompiler, PGDialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ClauseElement, ColumnElement
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.types import TypeEngine

Expr: TypeAlias = ColumnElement[Any]  # an SQL expression of a statement being built


def arg(position: int) -> BindParameter[Any]:
    """Parameter ``$position`` of a statement sent through asyncpg, written so by ``compiled()``
    (its type is the server's to infer: ``cast`` it where the server cannot)."""
    return bindparam(f"${position}")


def unless_null(param: Expr, type_: type[TypeEngine[Any]], *conditions: Expr) -> Expr:
    """An optional filter: no condition when ``param`` (of ``type_``) is null, else any of
    ``conditions``."""
    return or_(cast(param, type_).is_(None), *conditions)


class _Field(ColumnElement[Any]):
    inherit_cache = False  # built once at import, never cached

    def __init__(self, row: ColumnElement[Any], name: str) -> None:
        self.row = row
        self.name = name

    @property
    def _from_objects(self) -> list[FromClause]:
        return self.row._from_objects


@compiles(_Field)
def _compile_field(element: _Field, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.row, **kw)}).{element.name}"


def field(row: Expr, name: str) -> Expr:
    """``(row).name``: one field of a composite value, such as the row a database function
    returns."""
    return _Field(row, name)


class _Compiler(PGCompiler):
    """Renders the values a statement was built with inline, each ``arg(n)`` as ``$n``, and the
    parameters it was built without as ``$1``, ``$2``… markers in the order they appear."""

    def visit_bindparam(self, bindparam: BindParameter[Any], *args: Any, **kw: Any) -> Any:
        if bindparam.key.startswith("$"):
            return bindparam.key
        if bindparam.value is None and bindparam.callable is None:
            kw["literal_binds"] = False
        return super().visit_bindparam(bindparam, *args, **kw)


class _Dialect(PGDialect):
    statement_compiler = _Compiler


_DIALECT = _Dialect(paramstyle="numeric_dollar")


@dataclass(frozen=True)
class CompiledStatement:
    """A composed statement as plain SQL, its parameters ``$1``, ``$2``… standing for
    ``names`` in that order (a name used twice is one parameter)."""

    sql: str
    names: tuple[str, ...]

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values of ``params`` in the order of the statement's parameters (other names
        in ``params`` are left out)."""
        return tuple(params[name] for name in self.names)


def compiled(statement: ClauseElement) -> CompiledStatement:
    """A statement built on the tables as plain SQL: the constants it was built with inline,
    each ``bindparam("name")`` as one ``$n``."""
    found = statement.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True})
    assert isinstance(found, _Compiler)
    return CompiledStatement(str(found), tuple(found.positiontup or ()))


def compiled_sql(statement: ClauseElement) -> str:
    """``compiled()`` of a statement whose parameters are all ``arg(n)``: its SQL."""
    found = compiled(statement)
    assert not found.names, "a statement numbered with arg(n) takes no named parameters"
    return found.sql
