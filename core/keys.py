"""Re-keying: every encrypted column of every table rewritten under the first key of
ALI_ENCRYPTION_KEYS, so an old key can be removed; resumable, audited with counts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Column, Table, Text, and_, select, type_coerce, update
from sqlalchemy.orm import Session

from core import audit
from core.clock import now as clock_now
from core.crypto import EncryptedText, is_current, rotate
from core.db import Base

log = logging.getLogger(__name__)

BATCH = 200
Progress = Callable[[str], None]


@dataclass
class Rekeyed:
    """What a run rewrote, per table, and what was already under the current key."""

    rewritten: dict[str, int] = field(default_factory=dict)
    already_current: int = 0

    @property
    def total(self) -> int:
        return sum(self.rewritten.values())


def encrypted_columns() -> list[tuple[Table, list[Column[str]]]]:
    """Every table with EncryptedText columns, found in the models' metadata: a table another
    feature adds is re-keyed without anyone listing it here."""
    found = []
    for table in Base.metadata.sorted_tables:
        columns = [col for col in table.columns if isinstance(col.type, EncryptedText)]
        if columns:
            found.append((table, columns))
    return found


def reencrypt_all(session: Session, *, progress: Progress, batch: int = BATCH) -> Rekeyed:
    """Rewrite every value not already under the current key. COMMITS after each batch, so a
    run stopped halfway keeps what it did and the next run skips it.

    Each value is updated only if it is still the token that was read: a value the app
    rewrote meanwhile is already under the current key and is left alone.
    """
    result = Rekeyed()
    for table, columns in encrypted_columns():
        (key,) = table.primary_key.columns  # every table of Ali has a one-column key
        raw = [type_coerce(col, Text).label(col.name) for col in columns]
        last: object = None
        rewritten = 0
        while True:
            query = select(key, *raw).order_by(key).limit(batch)
            if last is not None:
                query = query.where(key > last)
            rows = session.execute(query).all()
            if not rows:
                break
            for row in rows:
                for col in columns:
                    token: str | None = getattr(row, col.name)
                    if token is None or token == "":
                        continue
                    if is_current(token):
                        result.already_current += 1
                        continue
                    session.execute(
                        update(table)
                        .where(and_(key == row[0], type_coerce(col, Text) == token))
                        .values({col.name: type_coerce(rotate(token), Text)})
                    )
                    rewritten += 1
            last = rows[-1][0]
            session.commit()
            progress(f"{table.name}: {rewritten} rewritten (up to id {last})")
        result.rewritten[table.name] = rewritten
    audit.record(
        session,
        now=clock_now(),
        action="reencrypt",
        object_type="keys",
        actor="cli",
        fields=[f"{table.name}.{col.name}" for table, cols in encrypted_columns() for col in cols],
        detail={"rewritten": result.rewritten, "already_current": result.already_current},
    )
    session.commit()
    log.info("re-keying done: %d values rewritten", result.total)
    return result
