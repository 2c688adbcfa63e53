"""Routing a case through the hand-off API: every rule of design §5, in its order."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.config import load_settings
from oncall.models import RotaShift
from routing.places import InvalidProvinceError, ProvinceSource, resolve_province
from routing.services import chain_for
from tests.conftest import UserFactory
from tests.intake.signed import Sender, make_source

SERVED = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")
# A landline in the main area code of each served province's chief town.
LANDLINES = {
    "BG": "035 123456",
    "BS": "030 1234567",
    "CR": "0372 123456",
    "LO": "0371 123456",
    "LC": "0341 123456",
    "MN": "0376 123456",
    "PV": "0382 123456",
}


@pytest.fixture
def sender(client: FlaskClient, db: Session, clock: FrozenClock) -> Sender:
    return Sender(client, make_source(db, clock), clock)


def routed(sender: Sender, **fields: Any) -> tuple[str | None, str]:
    body = {"external_id": uuid.uuid4().hex, **fields}
    response = sender.post(body)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    return answer["province"], answer["province_source"]


@pytest.mark.parametrize(
    "province",
    [
        "BS",
        "bs",
        " Bs ",
        "Brescia",
        "BRESCIA",
        "brèscia",
        "017",
        "17",
        "Provincia di Brescia",
        "BS\u200b",
        "\u00a0Brescia\u3000",
    ],
)
def test_explicit_province_in_every_form(sender: Sender, province: str) -> None:
    assert routed(sender, province=province) == ("BS", "explicit")


def test_explicit_province_wins_over_municipality_and_phone(sender: Sender) -> None:
    assert routed(
        sender, province="Mantova", municipality="Chiari", caller_phone=LANDLINES["BG"]
    ) == ("MN", "explicit")


def test_explicit_province_outside_the_served_set_is_out_of_area(sender: Sender) -> None:
    assert routed(sender, province="Roma") == ("RM", "out_of_area")


def test_an_unknown_explicit_province_is_left_out_of_routing_with_a_warning(
    sender: Sender,
) -> None:
    """Never a refusal (design §4): the other rules still run; nothing guesses from the typo."""
    response = sender.post({"external_id": "bad", "province": "Gondor", "municipality": "Chiari"})
    assert response.status_code == 201
    answer = response.get_json()
    assert (answer["province"], answer["province_source"]) == ("BS", "municipality")
    assert [w["field"] for w in answer["warnings"]] == ["province"]
    alone = sender.post({"external_id": "bad-2", "province": "Bresica"}).get_json()
    assert (alone["province"], alone["province_source"]) == (None, "unresolved")


@pytest.mark.parametrize(
    ("municipality", "sigla"),
    [
        ("Chiari", "BS"),
        ("Sant'Angelo Lodigiano", "LO"),
        ("sant angelo lodigiano", "LO"),
        ("SANT’ANGELO  LODIGIANO", "LO"),
        ("Cologno al Serio", "BG"),
        ("Castro (BG)", "BG"),
        ("Viadana", "MN"),
        ("Vigevano", "PV"),
    ],
)
def test_municipality_decides_when_there_is_no_province(
    sender: Sender, municipality: str, sigla: str
) -> None:
    assert routed(sender, municipality=municipality) == (sigla, "municipality")


def test_municipality_outside_the_served_provinces_is_out_of_area(sender: Sender) -> None:
    assert routed(sender, municipality="Lecce") == ("LE", "out_of_area")


def test_ambiguous_municipality_is_not_guessed(sender: Sender) -> None:
    # Castro is a comune of BG and of LE: with nothing else, the case is unresolved...
    assert routed(sender, municipality="Castro") == (None, "unresolved")
    # ...and the next rule decides when it can.
    assert routed(sender, municipality="Castro", caller_phone=LANDLINES["BS"]) == (
        "BS",
        "area_code",
    )


def test_unknown_municipality_falls_through_to_the_phone(sender: Sender) -> None:
    assert routed(sender, municipality="Atlantide", caller_phone=LANDLINES["PV"]) == (
        "PV",
        "area_code",
    )


@pytest.mark.parametrize(("sigla", "number"), sorted(LANDLINES.items()))
def test_landline_of_each_served_province(sender: Sender, sigla: str, number: str) -> None:
    assert routed(sender, caller_phone=number) == (sigla, "area_code")


def test_landline_outside_the_served_provinces_is_out_of_area(sender: Sender) -> None:
    assert routed(sender, caller_phone="02 12345678") == ("MI", "out_of_area")


@pytest.mark.parametrize("number", ["333 123 4567", "+39 347 000 1111", "+44 20 7946 0958"])
def test_mobile_or_foreign_number_is_unresolved(sender: Sender, number: str) -> None:
    assert routed(sender, caller_phone=number) == (None, "unresolved")


def test_the_callback_phone_does_not_route(sender: Sender) -> None:
    assert routed(sender, callback_phone=LANDLINES["CR"]) == (None, "unresolved")


def test_served_provinces_are_configuration(
    app: Flask, tmp_path: Any, database_url: str, db: Session, clock: FrozenClock
) -> None:
    """Another project serving other provinces gets its own routing, with no code change."""
    from core.app import create_app  # noqa: PLC0415 -- a second app for this test only
    from tests.conftest import ali_environ  # noqa: PLC0415

    settings = load_settings(ali_environ(database_url, tmp_path, ALI_PROVINCES="MI,MB"))
    other = create_app(settings, clock=clock, engine=app.extensions["ali.engine"])
    sender = Sender(other.test_client(), make_source(db, clock), clock)
    assert routed(sender, municipality="Chiari") == ("BS", "out_of_area")
    assert routed(sender, caller_phone="02 12345678") == ("MI", "area_code")


# --- the service functions ---------------------------------------------------------------------


def test_resolve_province_raises_on_an_unknown_explicit_province() -> None:
    with pytest.raises(InvalidProvinceError):
        resolve_province(served=SERVED, province="Gondor")
    assert resolve_province(served=SERVED).source is ProvinceSource.UNRESOLVED


def test_chain_for_finds_the_primary_on_call(
    db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("CR",))
    now = clock.now()
    db.add(
        RotaShift(
            province="CR",
            tier="primary",
            user_id=operator.id,
            start_at=now - timedelta(hours=1),
            end_at=now + timedelta(hours=1),
            created_at=now,
        )
    )
    db.commit()

    by_phone = resolve_province(served=SERVED, caller_phone=LANDLINES["CR"])
    assert (by_phone.sigla, by_phone.source) == ("CR", ProvinceSource.AREA_CODE)
    route = chain_for(db, resolution=by_phone, at=now)
    assert route is not None
    assert route.primary is not None
    assert route.primary.id == operator.id
    explicit = resolve_province(served=SERVED, province="CR")
    later = chain_for(db, resolution=explicit, at=now + timedelta(hours=2))
    assert later is not None
    assert later.primary is None
    nowhere = resolve_province(served=SERVED, province="Roma")
    assert chain_for(db, resolution=nowhere, at=now) is None
    assert chain_for(db, resolution=resolve_province(served=SERVED), at=now) is None
