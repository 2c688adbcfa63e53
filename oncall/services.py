"""TEMPORARY: what routing/services.py still imports, until it moves to oncall.chain."""

# Delete this file once routing/services.py imports from oncall.chain (the lead is on it):
# nothing else may import it.

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from core.models import User
from oncall.chain import OnCallChain, on_call_chain

__all__ = ["OnCallChain", "on_call_chain", "primary_on_call"]


def primary_on_call(session: Session, *, province: str, at: datetime) -> User | None:
    return on_call_chain(session, province=province, at=at).primary
