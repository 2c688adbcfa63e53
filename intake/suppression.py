"""Small-count suppression of a report's counts: primary (1 and 2) and secondary, so that no
suppressed count can be worked out from the published ones and the sums that tie them.

Pure functions over cells and the equations between them (a total is the sum of its parts),
so the rule is tested on its own against an attacker who solves the equations.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

SMALL = 3  # counts below this and above zero are never shown


@dataclass(frozen=True)
class Equation:
    """`total` is the sum of `parts` (cells are keys of the values mapping)."""

    total: Hashable
    parts: tuple[Hashable, ...]


def is_small(value: int) -> bool:
    return 0 < value < SMALL


def suppress(
    values: Mapping[Hashable, int], equations: Sequence[Equation]
) -> tuple[set[Hashable], set[Hashable]]:
    """The primary and the secondary suppressed cells.

    Primary: counts of 1 and 2. Secondary: added, smallest first, until no suppressed cell is
    determined, neither by the equations (a total minus its published parts, or any linear
    combination of the sums) nor by the bounds an attacker knows (a `<3` is 1 or 2, a count
    is never negative: two `<3` cells summing to 2 are both 1)."""
    primary = {cell for cell, value in values.items() if is_small(value)}
    hidden = set(primary)
    while True:
        exposed = _exposed(values, equations, hidden, primary)
        if not exposed:
            return primary, hidden - primary
        # Several exposed cells are fixed in one round (the check is the costly part), but not
        # two of one equation: the first cell hidden may protect both.
        touched: set[Hashable] = set()
        added = False
        for cell in exposed:
            if cell in touched:
                continue
            chosen = _next_to_hide(values, equations, hidden, cell)
            if chosen is None:  # everything tied to it is hidden already
                continue
            hidden.add(chosen)
            added = True
            for equation in equations:
                cells = (equation.total, *equation.parts)
                if chosen in cells or cell in cells:
                    touched.update(cells)
        if not added:
            return primary, hidden - primary


def _next_to_hide(
    values: Mapping[Hashable, int],
    equations: Sequence[Equation],
    hidden: set[Hashable],
    exposed: Hashable,
) -> Hashable | None:
    """The smallest published cell sharing an equation with `exposed`; parts before totals,
    so that a total stays published when a part can hide the cell as well."""
    # A hidden zero would be told apart (hidden cells other than `<3` are 0 or at least 3),
    # so zeros go last.
    candidates: list[tuple[int, int, int, str, Hashable]] = []
    for equation in equations:
        cells = (equation.total, *equation.parts)
        if exposed not in cells:
            continue
        for cell in cells:
            if cell not in hidden:
                is_total = int(cell == equation.total)
                zero = int(values[cell] == 0)
                candidates.append((zero, is_total, values[cell], repr(cell), cell))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[:4])[4]


def _exposed(
    values: Mapping[Hashable, int],
    equations: Sequence[Equation],
    hidden: set[Hashable],
    primary: set[Hashable],
) -> list[Hashable]:
    """The hidden cells an attacker can work out, in a stable order."""
    found = determined_by_bounds(values, equations, hidden, primary)
    found += determined_by_equations(values, equations, sorted(hidden, key=repr))
    return list(dict.fromkeys(found))


def _domain(cell: Hashable, primary: set[Hashable], limit: int) -> list[int]:
    """What an attacker knows of a hidden cell: `<3` is 1 or 2; a cell hidden to protect
    another is shown differently, so it is 0 or at least 3."""
    if cell in primary:
        return [1, 2]
    return [0, *range(SMALL, limit + 1)]


def determined_by_bounds(
    values: Mapping[Hashable, int],
    equations: Sequence[Equation],
    hidden: set[Hashable],
    primary: set[Hashable],
) -> list[Hashable]:
    """Hidden cells that one equation with a published total pins down, given what is known
    of hidden values (two `<3` summing to 2 are both 1; a `<3` and a hidden cell summing to 2
    are 2 and 0)."""
    found: list[Hashable] = []
    for equation in equations:
        if equation.total in hidden:
            continue
        unknown = sorted((cell for cell in equation.parts if cell in hidden), key=repr)
        if not unknown:
            continue
        rest = values[equation.total] - sum(
            values[cell] for cell in equation.parts if cell not in hidden
        )
        domains = [_domain(cell, primary, rest) for cell in unknown]
        for i, cell in enumerate(unknown):
            others = domains[:i] + domains[i + 1 :]
            reachable = _sums(others, rest)
            possible = [v for v in domains[i] if rest - v in reachable]
            if len(possible) <= 1:
                found.append(cell)
    return found


def _sums(domains: Sequence[list[int]], limit: int) -> set[int]:
    """Every total up to `limit` that one value from each domain can make."""
    totals = {0}
    for domain in domains:
        totals = {t + v for t in totals for v in domain if t + v <= limit}
    return totals


def determined_by_equations(
    values: Mapping[Hashable, int], equations: Sequence[Equation], hidden: Sequence[Hashable]
) -> list[Hashable]:
    """Hidden cells whose value follows from the equations alone: those whose unit vector
    lies in the row space of the equations restricted to the hidden cells."""
    if not hidden:
        return []
    index = {cell: i for i, cell in enumerate(hidden)}
    rows: list[list[Fraction]] = []
    for equation in equations:
        row = [Fraction(0)] * len(hidden)
        touched = False
        for cell, sign in ((equation.total, -1), *((part, 1) for part in equation.parts)):
            if cell in index:
                row[index[cell]] += sign
                touched = True
        if touched and any(row):
            rows.append(row)
    basis, pivots = _echelon(rows)
    found = []
    for cell, i in index.items():
        unit = [Fraction(0)] * len(hidden)
        unit[i] = Fraction(1)
        if not any(_reduced(unit, basis, pivots)):
            found.append(cell)
    return found


def _reduced(
    original: list[Fraction], basis: list[list[Fraction]], pivots: list[int]
) -> list[Fraction]:
    """`original` minus its part in the span of the echelon `basis`: zero when inside it."""
    row = list(original)
    for pivot, base in zip(pivots, basis, strict=True):
        if row[pivot]:
            factor = row[pivot] / base[pivot]
            row = [a - factor * b if b else a for a, b in zip(row, base, strict=True)]
    return row


def _echelon(rows: Iterable[list[Fraction]]) -> tuple[list[list[Fraction]], list[int]]:
    """A row-echelon basis of the span of `rows` and its pivots (exact arithmetic)."""
    basis: list[list[Fraction]] = []
    pivots: list[int] = []
    for original in rows:
        row = _reduced(original, basis, pivots)
        lead = next((i for i, x in enumerate(row) if x), None)
        if lead is not None:
            basis.append(row)
            pivots.append(lead)
    return basis, pivots
