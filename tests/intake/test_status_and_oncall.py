"""`GET /api/v1/handoffs/<external_id>` and `GET /api/v1/oncall`: signed reads, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import AuditEntry
from intake.services import IssuedSecret
from oncall.chain import coordinators_to_page, on_call_chain
from oncall.models import RotaShift
from routing.models import Case
from tests.conftest import UserFactory
from tests.intake.signed import Sender, make_source


def test_status_of_a_handoff_says_who_accepted_it_and_when(
    sender: Sender, db: Session, make_user: UserFactory
) -> None:
    sender.post({"external_id": "NV/2026/7", "province": "BS"})
    fresh = sender.get("/api/v1/handoffs/NV/2026/7")
    assert fresh.status_code == 200
    assert fresh.get_json() == {
        "case": "BS-2026-0001",
        "status": "dispatched",
        "accepted": False,
        "province": "BS",
        "accepted_by": None,
        "accepted_at": None,
    }

    operator = make_user(name="Operatore Uno")
    case = db.scalars(select(Case)).one()
    case.status, case.accepted_by_id = "accepted", operator.id
    case.accepted_at = datetime(2026, 11, 24, 10, 2, 13, tzinfo=UTC)
    db.commit()
    accepted = sender.get("/api/v1/handoffs/NV%2F2026%2F7")
    assert accepted.get_json() == {
        "case": "BS-2026-0001",
        "status": "accepted",
        "accepted": True,
        "province": "BS",
        "accepted_by": "Operatore Uno",
        "accepted_at": "2026-11-24T10:02:13+00:00",
    }
    reads = db.scalars(select(AuditEntry).where(AuditEntry.action == "read")).all()
    assert [(r.actor, r.object_type, r.object_id) for r in reads] == [
        ("source:numero-verde", "case", str(case.id))
    ] * 2


def test_a_source_sees_only_its_own_handoffs(
    client: FlaskClient, sender: Sender, db: Session, clock: FrozenClock
) -> None:
    sender.post({"external_id": "mine"})
    other = Sender(client, make_source(db, clock, name="altro"), clock)
    response = other.get("/api/v1/handoffs/mine")
    assert response.status_code == 404
    assert "error" in response.get_json()
    assert sender.get("/api/v1/handoffs/unknown").status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/handoffs/mine", "/api/v1/oncall?province=BS"])
def test_reads_must_be_signed(
    client: FlaskClient, sender: Sender, clock: FrozenClock, path: str
) -> None:
    sender.post({"external_id": "mine"})
    assert client.get(path).status_code == 401
    signed_for_a_body = sender.headers(b"{}")
    assert client.get(path, headers=signed_for_a_body).status_code == 401
    late = sender.headers(b"", clock.now() - timedelta(minutes=6))
    assert client.get(path, headers=late).status_code == 401


def test_on_call_chain_now(
    sender: Sender, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    primary = make_user(provinces=("BS",), name="Prima", phone="+393330000001")
    backup = make_user(provinces=("BS",), name="Seconda", phone="+393330000002")
    coordinator = make_user(roles=("coordinator",), provinces=(), name="Coordinatrice")
    now = clock.now()
    for user, tier in ((primary, "primary"), (backup, "backup")):
        db.add(
            RotaShift(
                province="BS",
                tier=tier,
                user_id=user.id,
                start_at=now - timedelta(hours=1),
                end_at=now + timedelta(hours=1),
                created_at=now,
            )
        )
    db.commit()

    response = sender.get("/api/v1/oncall?province=brescia")

    assert response.status_code == 200
    assert response.get_json() == {
        "province": "BS",
        "at": "2026-11-24T10:00:00+00:00",
        "primary": {"name": "Prima", "phone": "+393330000001", "phone_verified": True},
        "backup": {"name": "Seconda", "phone": "+393330000002", "phone_verified": True},
        "coordinators": [
            {"name": "Coordinatrice", "phone": coordinator.phone, "phone_verified": True}
        ],
    }
    entry = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "oncall")).one()
    assert (entry.action, entry.object_id) == ("read", "BS")


def test_on_call_shows_the_chain_the_router_pages_with_each_phone_verified_or_not(
    sender: Sender, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    primary = make_user(provinces=("BS",), name="Prima", phone="+393330000001", verified=False)
    on_duty = make_user(roles=("coordinator",), provinces=(), name="Di turno", verified=False)
    other = make_user(roles=("coordinator",), provinces=(), name="Altra")
    make_user(roles=("coordinator",), provinces=(), name="Senza telefono", verified=False)
    now = clock.now()
    for user, province, tier in ((primary, "BS", "primary"), (on_duty, None, "coordinator")):
        db.add(
            RotaShift(
                province=province,
                tier=tier,
                user_id=user.id,
                start_at=now - timedelta(hours=1),
                end_at=now + timedelta(hours=1),
                created_at=now,
            )
        )
    db.commit()

    body = sender.get("/api/v1/oncall?province=BS").get_json()

    # The primary's unverified phone is said so: the router skips it.
    assert body["primary"] == {"name": "Prima", "phone": "+393330000001", "phone_verified": False}
    # The coordinator on duty cannot be paged, so the router pages every coordinator who
    # can: the answer lists the same people the router considers, each flagged.
    assert [(c["name"], c["phone_verified"]) for c in body["coordinators"]] == [
        ("Di turno", False),
        ("Altra", True),
        ("Senza telefono", False),
    ]
    chain = on_call_chain(db, province="BS", at=now)
    considered, pageable = coordinators_to_page(db, chain)
    assert [u.display_name for u in considered] == [c["name"] for c in body["coordinators"]]
    assert [u.id for u in pageable] == [other.id]


def test_on_call_with_nobody_on_call(sender: Sender) -> None:
    body = sender.get("/api/v1/oncall?province=017").get_json()
    assert (body["province"], body["primary"], body["backup"]) == ("BS", None, None)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "is required"),
        ("?province=", "is required"),
        ("?province=Atlantide", "is not an Italian province"),
        ("?province=MI", "MI is not served by this instance of Ali"),
    ],
)
def test_on_call_needs_a_served_province(
    sender: Sender, source: IssuedSecret, query: str, message: str
) -> None:
    response = sender.get("/api/v1/oncall" + query)
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "province"
    assert error["message"].startswith(message)
