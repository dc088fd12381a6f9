"""The funder view: primary suppression (a figure resting on fewer than k people is withheld)
and complementary suppression (more figures withheld until no withheld one can be worked out
from the shown ones by adding and subtracting). The method is in the package docstring."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from timebank.reports.schemas import CategoryRow, FlowRow, Metrics

M = TypeVar("M", bound=Metrics)
R = TypeVar("R", CategoryRow, FlowRow)

Cell = Hashable

# Singular values below this are zero: the relations have coefficients 0 and ±1 and a few
# hundred cells, so the true non-zero ones are far larger.
_TOLERANCE = 1e-9

# Which figures of a row of metrics go with each kind of cell of the published tables.
VOLUME = ("minutes", "hours", "exchanges")
SHARES = (
    ("active_share", ("active", "participants")),
    ("new_share", ("new", "participants")),
    ("reciprocal_share", ("reciprocal", "active")),
)
ROW_FIGURES = ["exchanges", "hours", "minutes", "people"]
# The cells of gifts, grants and group sessions: (cell figure, the metrics withheld with it,
# the minutes it holds).
KIND_CELLS = (
    ("gifted", ("gifted_minutes", "gifted_hours"), "gifted_minutes"),
    ("gifted_to_pot", ("gifted_to_pot_minutes", "gifted_to_pot_hours"), "gifted_to_pot_minutes"),
    ("granted", ("granted_minutes", "granted_hours"), "granted_minutes"),
    (
        "sessions",
        ("sessions", "session_attendances", "session_minutes", "session_hours"),
        "session_minutes",
    ),
)


def rests_on(metrics: Metrics, figure: str) -> int:
    """The people a cell of gifts, grants or sessions (``KIND_CELLS``) rests on: gifts between
    members on the fewer of their givers and their recipients, gifts to the pot on their
    givers, grants on their recipients, sessions on the participants of their legs."""
    if figure == "gifted":
        return min(metrics.gift_givers, metrics.gift_recipients)
    if figure == "gifted_to_pot":
        return metrics.pot_givers
    if figure == "granted":
        return metrics.grant_recipients
    return metrics.session_people


def most_ties_among(people: int) -> int:
    """The most pairs that so many people can form: more two-way ties than that involve at
    least one more person."""
    return max(people, 0) * max(people - 1, 0) // 2


def primary_metrics(metrics: Metrics, k: int) -> set[str]:
    """The figures of a row of metrics that rest on fewer than k people."""
    hidden: set[str] = set()
    for count in ("participants", "active", "new", "reciprocal", "first_exchanges"):
        if (getattr(metrics, count) or 0) < k:
            hidden.add(count)
    if "active" in hidden:
        hidden |= {*VOLUME, "ties", "two_way_ties", "two_way_tie_share"}
    if (metrics.two_way_ties or 0) <= most_ties_among(k - 1):
        hidden |= {"two_way_ties", "two_way_tie_share"}
    for figure, names, _ in KIND_CELLS:
        if rests_on(metrics, figure) < k:
            hidden |= set(names)
    return hidden


def suppress_metrics(metrics: M, k: int, also: Iterable[str] = ()) -> M:
    """The row with its primary suppressions and ``also`` (complementary ones) withheld; a
    share goes with its numerator or denominator, a median with its count."""
    hidden = primary_metrics(metrics, k) | set(also)
    for share, parts in SHARES:
        if hidden & set(parts):
            hidden.add(share)
    if "first_exchanges" in hidden:
        hidden.add("median_days_to_first_exchange")
    return metrics.model_copy(update={**dict.fromkeys(hidden), "suppressed": sorted(hidden)})


def suppress_row(row: R, k: int, withhold: bool = False) -> R:
    """A category or flow row, withheld whole when it rests on fewer than k people (or when
    ``withhold`` says so, as a complementary suppression)."""
    if (row.people or 0) >= k and not withhold:
        return row
    return row.model_copy(update={**dict.fromkeys(ROW_FIGURES), "suppressed": ROW_FIGURES})


@dataclass(frozen=True)
class Relation:
    """A published linear relation: ``total`` is the sum of ``parts``."""

    total: Cell
    parts: tuple[Cell, ...]

    def cells(self) -> tuple[Cell, ...]:
        return (self.total, *self.parts)


@dataclass
class Table:
    """Everything a funder can see at one publication, before suppression: each cell's value
    (0 rests on nobody), which cells rest on fewer than k people, and the relations between
    them. A cell known to be 0 (a category absent from a period) is left out of relations."""

    values: dict[Cell, int] = field(default_factory=dict)
    primary: set[Cell] = field(default_factory=set)
    relations: list[Relation] = field(default_factory=list)

    def add(self, cell: Cell, value: int, small: bool) -> None:
        self.values[cell] = value
        if small:
            self.primary.add(cell)


def recoverable(relations: Iterable[Relation], hidden: Iterable[Cell]) -> set[Cell]:
    """The hidden cells whose value follows from the other cells through the relations: those
    for which every solution of the relations (hidden cells as unknowns) agrees, i.e. whose
    unit vector lies in the row space of the relations restricted to the unknowns."""
    unknown = set(hidden)
    rows: list[dict[Cell, int]] = []
    for relation in relations:
        row: dict[Cell, int] = {}
        for cell, sign in ((relation.total, 1), *((part, -1) for part in relation.parts)):
            if cell in unknown:
                row[cell] = row.get(cell, 0) + sign
        if any(row.values()):
            rows.append(row)
    involved = sorted({cell for row in rows for cell in row}, key=repr)
    if not involved:
        return set()
    index = {cell: n for n, cell in enumerate(involved)}
    matrix = np.zeros((len(rows), len(involved)))
    for r, row in enumerate(rows):
        for cell, coefficient in row.items():
            matrix[r, index[cell]] = coefficient
    _, singular, vt = np.linalg.svd(matrix)
    rank = int((singular > _TOLERANCE * max(1.0, float(singular[0]))).sum())
    null = vt[rank:]
    if null.shape[0] == 0:
        return set(involved)
    free = np.abs(null).max(axis=0) > 1e-7
    return {cell for cell, n in index.items() if not free[n]}


def protect(
    table: Table,
    withheld_before: Collection[Cell] = frozenset(),
    shown_before: Collection[Cell] = frozenset(),
) -> set[Cell]:
    """The cells to withhold: the primary ones, every cell of the table that an earlier
    publication withheld, and the smallest cells sharing a relation with a withheld non-zero
    cell that can still be worked out, until none can. Cells an earlier publication showed
    count as known (a funder may keep every publication), so they are never chosen to hide
    another. First the cheap rule (no relation with exactly one unknown non-zero cell), then
    the exact check, adding one cell for each cell it still finds exposed. Deterministic: the
    same table and the same earlier cells give the same cells."""
    withheld = set(table.primary) | {cell for cell in withheld_before if cell in table.values}
    # Known whatever is withheld now: what was shown before, and what follows from it alone.
    known = set(shown_before) & set(table.values)
    if known:
        known |= recoverable(table.relations, set(table.values) - known)
    by_cell: dict[Cell, list[Relation]] = {}
    for relation in table.relations:
        for cell in relation.cells():
            by_cell.setdefault(cell, []).append(relation)

    def cost(cell: Cell) -> tuple[int, str]:
        return (table.values.get(cell, 0), repr(cell))

    def unknown(cells: Iterable[Cell]) -> list[Cell]:
        return [cell for cell in cells if cell in withheld and cell not in known]

    def candidates(relations: Iterable[Relation]) -> list[Cell]:
        """Shown non-zero cells of the relations that are not known already."""
        return [
            other
            for relation in relations
            for other in relation.cells()
            if other not in withheld and other not in known and table.values.get(other, 0)
        ]

    changed = True
    while changed:  # a relation with one unknown gives it away: withhold a second cell
        changed = False
        for relation in table.relations:
            alone = unknown(relation.cells())
            if len(alone) == 1 and table.values.get(alone[0], 0):
                if chosen := candidates([relation]):
                    withheld.add(min(chosen, key=cost))
                    changed = True
    while True:
        exposed = sorted(
            (c for c in recoverable(table.relations, unknown(withheld)) if table.values.get(c, 0)),
            key=repr,
        )
        if not exposed:
            return withheld
        added: set[Cell] = set()
        for cell in exposed:
            if chosen := [c for c in candidates(by_cell.get(cell, [])) if c not in added]:
                added.add(min(chosen, key=cost))
        if not added:  # every neighbour is withheld already: widen to any relation's cells
            rest = candidates(table.relations)
            if not rest:
                return withheld
            added.add(min(rest, key=cost))
        withheld |= added
