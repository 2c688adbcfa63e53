"""The daily phone check also warns of any moment of the next 24 hours when a province has
nobody reachable on call (no primary or backup, or none Ali can page), once a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import SentNotification, User
from core.scheduler import run_job
from oncall.jobs import PHONE_CHECK
from oncall.models import RotaShift
from oncall.notifications import unreachable_stretches
from tests.conftest import UserFactory
from tests.twilio_standin import TwilioStandIn

SERVED = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")
# 09:00 in Rome on the Saturday before the clocks go back (03:00 CEST → 02:00 CET, 01:00 UTC).
SATURDAY = datetime(2026, 10, 24, 7, 0, tzinfo=UTC)
CHANGE = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def shift(
    db: Session,
    user: User,
    start: datetime,
    end: datetime,
    *,
    province: str = "BS",
    tier: str = "primary",
) -> None:
    db.add(
        RotaShift(
            province=province,
            tier=tier,
            user_id=user.id,
            start_at=start,
            end_at=end,
            created_at=start,
        )
    )
    db.commit()


@pytest.fixture
def others_covered(db: Session, make_user: UserFactory) -> User:
    """Every served province but BS has a reachable primary for days around SATURDAY."""
    zeno = make_user(name="Zeno", provinces=SERVED)
    for province in SERVED:
        if province != "BS":
            shift(
                db,
                zeno,
                SATURDAY - timedelta(days=2),
                SATURDAY + timedelta(days=3),
                province=province,
            )
    return zeno


def sent(db: Session, twilio: TwilioStandIn) -> list[tuple[str, str]]:
    sids = set(
        db.scalars(
            select(SentNotification.provider_id).where(SentNotification.kind == "reachable_daily")
        )
    )
    return [(m.to, m.body or "") for m in twilio.messages if m.sid in sids]


def test_an_unverified_operator_across_the_autumn_change_is_reported_once(
    app: Flask,
    db: Session,
    clock: FrozenClock,
    twilio: TwilioStandIn,
    make_user: UserFactory,
    others_covered: User,
) -> None:
    manager = make_user(name="Rita", roles=("operator", "rota_manager"), phone="+393331000091")
    coordinator = make_user(
        name="Carla", roles=("coordinator",), provinces=(), phone="+393331000092", locale="en"
    )
    make_user(roles=("operator", "rota_manager"), provinces=("BG",), phone="+393331000093")
    paola = make_user(name="Paola")
    ugo = make_user(name="Ugo", verified=False)
    # Paola until 02:00 CET (the second 02:00), Ugo with no verified phone for the next four
    # real hours (02:00 → 06:00 CET, five on the wall clock's first reading), then Paola.
    shift(db, paola, SATURDAY - timedelta(hours=1), CHANGE)
    shift(db, ugo, CHANGE, CHANGE + timedelta(hours=4))
    shift(db, paola, CHANGE + timedelta(hours=4), SATURDAY + timedelta(days=2))

    assert unreachable_stretches(
        db, provinces=SERVED, start=SATURDAY, end=SATURDAY + timedelta(hours=24)
    ) == {"BS": [(CHANGE, CHANGE + timedelta(hours=4))]}

    clock.set(SATURDAY - timedelta(minutes=1))  # 08:59: not yet
    run_job(app, PHONE_CHECK)
    assert sent(db, twilio) == []
    for minutes in (0, 5, 600):
        clock.set(SATURDAY + timedelta(minutes=minutes))
        run_job(app, PHONE_CHECK)
    assert sent(db, twilio) == [
        (
            manager.phone,
            "Ali: nelle prossime 24 ore BS ha momenti senza nessuno reperibile raggiungibile, "
            "il primo dal 25/10 02:00 CET al 25/10 06:00. I casi andrebbero ai coordinatori: "
            "coprili nella pagina dei turni.",
        ),
        (
            coordinator.phone,
            "Ali: in the next 24 hours BS has times with nobody reachable on call, the first "
            "from 25/10 02:00 CET to 25/10 06:00. Cases would go to the coordinators: cover "
            "them on the rota page.",
        ),
    ]
    # Sunday morning: the stretch is behind, nothing ahead, nobody is told again.
    clock.set(SATURDAY + timedelta(days=1))
    run_job(app, PHONE_CHECK)
    assert len(sent(db, twilio)) == 2


def test_a_reachable_backup_covers_the_primary_and_a_verified_phone_ends_the_warning(
    app: Flask,
    db: Session,
    clock: FrozenClock,
    twilio: TwilioStandIn,
    make_user: UserFactory,
    others_covered: User,
) -> None:
    make_user(roles=("operator", "rota_manager"))
    ugo = make_user(name="Ugo", verified=False)
    bruno = make_user(name="Bruno")
    shift(db, ugo, SATURDAY - timedelta(days=1), SATURDAY + timedelta(days=2))
    shift(db, bruno, SATURDAY + timedelta(hours=2), SATURDAY + timedelta(hours=30), tier="backup")
    window = {"provinces": SERVED, "start": SATURDAY, "end": SATURDAY + timedelta(hours=24)}
    assert unreachable_stretches(db, **window) == {  # type: ignore[arg-type]
        "BS": [(SATURDAY, SATURDAY + timedelta(hours=2))]
    }
    ugo.phone_verified_at = SATURDAY
    db.commit()
    assert unreachable_stretches(db, **window) == {}  # type: ignore[arg-type]
    clock.set(SATURDAY)
    run_job(app, PHONE_CHECK)
    assert sent(db, twilio) == []


def test_a_coordinator_hears_of_every_province_in_one_message(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    coordinator = make_user(roles=("coordinator",), provinces=(), locale="en")
    nadia = make_user(name="Nadia", provinces=("BS",))
    nadia.active = False
    db.commit()
    shift(db, nadia, SATURDAY - timedelta(days=1), SATURDAY + timedelta(days=2))
    clock.set(SATURDAY)
    run_job(app, PHONE_CHECK)
    [(to, body)] = sent(db, twilio)
    assert to == coordinator.phone
    assert body.startswith(
        "Ali: in the next 24 hours BG, BS, CR, LC, LO, MN, PV have times with nobody "
        "reachable on call, the first in BG from 24/10 09:00"
    )
    [row] = db.scalars(select(SentNotification).where(SentNotification.kind == "reachable_daily"))
    assert row.key == f"reachable:2026-10-24:{coordinator.id}"
