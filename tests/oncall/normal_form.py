"""The normal form of a schedule, for tests that resolve a range in pieces."""

from __future__ import annotations

from collections.abc import Iterable

from oncall.schedule import Shift


def normalize(schedule: Iterable[Shift]) -> list[Shift]:
    """Sort non-overlapping segments and merge adjacent ones with the same holder.

    Turns the concatenation of the schedules of adjacent ranges into the schedule of the
    union, e.g. a month from its days: what `final_schedule` of the union must equal.
    """
    merged: list[Shift] = []
    for segment in sorted(schedule, key=lambda item: (item.start, item.end)):
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.end == segment.start
            and (last.operator_id, last.source, last.rule_id, last.tier)
            == (segment.operator_id, segment.source, segment.rule_id, segment.tier)
        ):
            merged[-1] = Shift(
                last.operator_id, last.tier, last.start, segment.end, last.source, last.rule_id
            )
        else:
            merged.append(segment)
    return merged
