"""Small-count suppression against an attacker who knows every published figure, every sum
that ties them and what `<3` means, and tries every value of the hidden cells."""

from __future__ import annotations

from collections.abc import Hashable
from itertools import product

import pytest

from intake.suppression import Equation, suppress


def table(rows: dict[str, list[int]]) -> tuple[dict[Hashable, int], list[Equation]]:
    """A province × category table with its row totals, an ALL row and a grand total."""
    values: dict[Hashable, int] = {}
    equations = []
    width = len(next(iter(rows.values())))
    for name, counts in rows.items():
        for i, count in enumerate(counts):
            values[(name, i)] = count
        values[(name, "total")] = sum(counts)
    for i in [*range(width), "total"]:
        values[("ALL", i)] = sum(values[(name, i)] for name in rows)
    for name in [*rows, "ALL"]:
        equations.append(Equation((name, "total"), tuple((name, i) for i in range(width))))
    for i in [*range(width), "total"]:
        equations.append(Equation(("ALL", i), tuple((name, i) for name in rows)))
    return values, equations


def recoverable(
    values: dict[Hashable, int],
    equations: list[Equation],
    primary: set[Hashable],
    hidden: set[Hashable],
) -> set[Hashable]:
    """The hidden cells that take one value only in every table consistent with what is
    published: `<3` is 1 or 2, any other hidden cell 0 or at least 3."""
    cells = sorted(hidden, key=repr)
    # Values near the true ones are enough to find a second solution when there is one.
    domains = [
        [1, 2]
        if c in primary
        else [v for v in range(values[c] - 3, values[c] + 4) if v == 0 or v >= 3]
        for c in cells
    ]
    seen: dict[Hashable, set[int]] = {c: set() for c in cells}
    for guess in product(*domains):
        trial = dict(values)
        trial.update(zip(cells, guess, strict=True))
        if all(trial[e.total] == sum(trial[p] for p in e.parts) for e in equations):
            for cell, value in zip(cells, guess, strict=True):
                seen[cell].add(value)
    return {cell for cell, found in seen.items() if len(found) == 1}


@pytest.mark.parametrize(
    "rows",
    [
        {"BS": [1, 4, 5], "BG": [6, 7, 8]},  # one small cell: its row total gives it away
        {"BS": [2, 0, 9], "BG": [0, 0, 4]},  # a zero beside it, a column of one
        {"BS": [1, 1, 5], "BG": [5, 6, 7]},  # two `<3` summing to 2: both are 1
        {"BS": [1, 5, 5], "BG": [2, 6, 7], "CR": [0, 0, 1]},  # a province total below 3
        {"BS": [3, 4, 5], "BG": [3, 4, 5]},  # nothing small: nothing hidden
    ],
)
def test_no_hidden_cell_can_be_worked_out(rows: dict[str, list[int]]) -> None:
    values, equations = table(rows)
    primary, secondary = suppress(values, equations)
    assert primary == {cell for cell, value in values.items() if value in (1, 2)}
    hidden = primary | secondary
    assert not recoverable(values, equations, primary, hidden)


def test_the_subtraction_attack_fails_and_no_more_is_hidden_than_needed() -> None:
    values, equations = table({"BS": [1, 4, 5], "BG": [6, 7, 8]})
    primary, secondary = suppress(values, equations)
    # BS total (10) minus 4 and 5 would give the 1, and ALL of column 0 (7) minus BG's 6:
    # cells of its row and its column go too, while the totals stay published.
    assert primary == {("BS", 0)}
    assert ("BS", 1) in secondary
    assert ("BG", 0) in secondary
    totals = {("BS", "total"), ("BG", "total"), ("ALL", "total"), ("ALL", 0)}
    assert not totals & secondary
    assert not recoverable(values, equations, primary, primary | secondary)


def test_nothing_small_hides_nothing() -> None:
    values, equations = table({"BS": [3, 4, 5], "BG": [0, 4, 5]})
    assert suppress(values, equations) == (set(), set())
