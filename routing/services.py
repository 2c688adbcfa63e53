"""Routing a case: its province by the design §5 rules and who is on call for it now."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.models import User
from oncall.services import OnCallChain, on_call_chain, primary_on_call
from routing.places import ProvinceResolution, ProvinceSource, resolve_province

# Sources whose province has a rota of its own; out-of-area and unresolved cases go to the
# coordinators (design §5) and have no primary.
_ROTA_SOURCES = frozenset(
    {
        ProvinceSource.EXPLICIT,
        ProvinceSource.MUNICIPALITY,
        ProvinceSource.AREA_CODE,
        ProvinceSource.PARTNER,
        ProvinceSource.MANUAL,
    }
)


@dataclass(frozen=True)
class CaseRoute:
    """Where a case goes: its province, how that was found, and the chain on call for it."""

    resolution: ProvinceResolution
    chain: OnCallChain | None  # None when the province has no rota (unresolved, out of area)

    @property
    def primary(self) -> User | None:
        return self.chain.primary if self.chain is not None else None


def case_province(
    *,
    served: Collection[str],
    province: str | None = None,
    municipality: str | None = None,
    caller_phone: str | None = None,
    partner_province: str | None = None,
) -> ProvinceResolution:
    """The province of a case from what the reporter said (no database needed).

    Raises `routing.places.InvalidProvinceError` when an explicit province is not one.
    """
    return resolve_province(
        served=served,
        province=province,
        municipality=municipality,
        caller_phone=caller_phone,
        partner_province=partner_province,
    )


def chain_for(
    session: Session, *, resolution: ProvinceResolution, at: datetime
) -> OnCallChain | None:
    """The on-call chain of a resolved province at `at`; None when it has no rota of ours."""
    if resolution.sigla is None or not has_rota(resolution):
        return None
    return on_call_chain(session, province=resolution.sigla, at=at)


def has_rota(resolution: ProvinceResolution) -> bool:
    """Whether a case of this resolution goes to its province's rota (else: coordinators)."""
    return resolution.sigla is not None and resolution.source in _ROTA_SOURCES


def primary_for(session: Session, *, resolution: ProvinceResolution, at: datetime) -> User | None:
    """`chain_for(...).primary` in one query: the intake's hot path needs nobody else."""
    if resolution.sigla is None or not has_rota(resolution):
        return None
    return primary_on_call(session, province=resolution.sigla, at=at)


def route_case(
    session: Session,
    *,
    served: Collection[str],
    at: datetime,
    province: str | None = None,
    municipality: str | None = None,
    caller_phone: str | None = None,
    partner_province: str | None = None,
) -> CaseRoute:
    """Province (design §5 order) and the on-call chain for a new case at `at`."""
    resolution = case_province(
        served=served,
        province=province,
        municipality=municipality,
        caller_phone=caller_phone,
        partner_province=partner_province,
    )
    return CaseRoute(resolution, chain_for(session, resolution=resolution, at=at))


def on_call_now(session: Session, *, province: str, at: datetime) -> OnCallChain:
    """The chain of a served province at `at` (for `GET /api/v1/oncall`)."""
    return on_call_chain(session, province=province, at=at)
